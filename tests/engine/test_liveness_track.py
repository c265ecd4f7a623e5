"""The face tracker's schedule (models/faces/liveness/track.py), with a landmarker that reads the face's box
from the frame itself: detection every `liveness_redetect_s`, interpolated boxes in between, landmarks on
every frame, and detection frame by frame again where the detector fails or jumps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.liveness.geometry import Points
from models.faces.liveness.track import FaceTracker, track_frames
from models.settings import EngineSettings

SETTINGS = EngineSettings()  # liveness_redetect_s 0.1: every third frame at 30 frames a second


def _frame(index: int) -> RGBImage:
    """A blank frame that carries its own index (the fake landmarker reads it)."""
    frame = np.zeros((240, 320, 3), dtype=np.uint8)
    frame[0, 0, 0], frame[0, 0, 1] = index % 256, index // 256
    return frame


def _index(image: RGBImage) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


@dataclass
class BoxReader:
    """The face is where `boxes` says, frame by frame; `misses` are frames the detector fails on."""

    boxes: dict[int, Box]
    misses: set[int] = field(default_factory=set)
    detected: list[int] = field(default_factory=list)
    landmarked: list[tuple[int, Box]] = field(default_factory=list)

    def detect(self, image: RGBImage, near: Box | None = None) -> Box | None:
        index = _index(image)
        self.detected.append(index)
        return None if index in self.misses else self.boxes.get(index)

    def landmarks(self, image: RGBImage, box: Box) -> Points | None:
        self.landmarked.append((_index(image), box))
        points = np.tile([(box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0], (68, 1))
        points[36:42, 0] = box.left + 0.3 * box.width   # eyes 0.4 box widths apart: a plausible face
        points[42:48, 0] = box.left + 0.7 * box.width
        return points


def _moving(frames: int) -> dict[int, Box]:
    """A face drifting right by 3 px a frame."""
    return {i: Box(100, 160 + 3 * i, 180, 80 + 3 * i) for i in range(frames)}


def _track(reader: BoxReader, frames: int, fps: float) -> list[int]:
    track = track_frames([_frame(i) for i in range(frames)], [i / fps for i in range(frames)], reader, SETTINGS)
    return [f.index for f in track.tracked]


def test_at_30_frames_a_second_every_third_frame_is_detected_and_every_frame_landmarked() -> None:
    reader = BoxReader(_moving(10))
    assert _track(reader, 10, 30.0) == list(range(10))
    assert reader.detected == [0, 3, 6, 9]
    # Between detections the box is interpolated: on a steady drift it is where the face is.
    assert [index for index, _ in reader.landmarked] == list(range(10))
    assert all(box == reader.boxes[index] for index, box in reader.landmarked)


def test_at_10_frames_a_second_or_fewer_every_frame_is_detected() -> None:
    reader = BoxReader(_moving(6))
    assert _track(reader, 6, 10.0) == list(range(6))
    assert reader.detected == list(range(6))


def test_frames_left_waiting_at_the_end_are_placed_with_a_detection_of_the_last() -> None:
    reader = BoxReader(_moving(5))
    assert _track(reader, 5, 30.0) == list(range(5))
    assert reader.detected == [0, 3, 4]


def test_a_failed_detection_sends_the_frames_before_it_to_the_detector_one_by_one() -> None:
    reader = BoxReader(_moving(7), misses={3})
    tracked = _track(reader, 7, 30.0)
    assert reader.detected[:4] == [0, 3, 1, 2]  # frame 3 missed: frames 1 and 2 get their own detection
    assert tracked == list(range(7))  # frame 3 itself uses the box carried from frame 2's landmarks


def test_a_box_that_jumps_between_detections_is_not_interpolated_over() -> None:
    boxes = _moving(4)
    boxes[3] = Box(10, 40, 40, 10)  # another place, another size: not the same face moving
    reader = BoxReader(boxes)
    _track(reader, 4, 30.0)
    assert reader.detected == [0, 3, 1, 2]


def test_a_live_camera_gets_waiting_frames_at_the_next_detection() -> None:
    reader = BoxReader(_moving(4))
    tracker = FaceTracker(reader, SETTINGS)
    returned = [tracker.add(_frame(i), i / 30.0) for i in range(4)]
    assert [f.index if f else None for f in returned] == [0, None, None, 3]
    assert [f.index for f in tracker.result().tracked] == [0, 1, 2, 3]
