"""A face followed through a burst: landmarks of the main face in every frame, cheaply.

Detecting a face in a whole 640x480 frame costs tens of milliseconds; once the face is known, it is looked for
again only in a window around where it was, scaled so the face is about the detector's smallest size, which
costs a few. Every frame's landmarks are predicted from a detector box (what the landmark model expects):
boxes carried over from the previous frame's landmarks drift on a moving face and make up a 3-D motion.

The detector runs only every `liveness_redetect_s` (every third frame at 30 frames a second); the frames in
between wait for the next detection and get a box interpolated between the two detected ones, so no error
builds up from frame to frame (a carried box drifts, an interpolated one is pinned at both ends), while the
landmarks, and so blinks and mouths, are still read on every frame. When the two detections disagree (the box
jumped) or the second one fails, the frames in between are detected one by one as before.

When the face escapes the detector for one frame (a strongly turned head), that frame uses the box of the
previous landmarks; a second miss in a row ends the track until the face is found again.

The liveness code needs only a `Landmarker`; every path takes `default_landmarker`: YuNet's boxes and MediaPipe
Face Mesh's points in the 68-point layout (mesh.py), whatever engine computes the embeddings. (dlib's 68-point
predictor, used here before, is trained on iBUG 300-W, whose terms exclude commercial use.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.liveness.geometry import Points, inter_ocular
from models.faces.liveness.mesh import MeshLandmarker
from models.settings import EngineSettings


class Landmarker(Protocol):
    """Finds the main face of a frame (near a previous box when given) and predicts its 68 landmarks."""

    def detect(self, image: RGBImage, near: Box | None = None) -> Box | None: ...

    def landmarks(self, image: RGBImage, box: Box) -> Points | None: ...


def default_landmarker(settings: EngineSettings) -> Landmarker:
    """The landmarker of every liveness path (the device, the server's re-check, the CLI, the benchmarks), so
    device and server read the same landmarks: YuNet boxes and Face Mesh points (mesh.py)."""
    return MeshLandmarker(settings)


@dataclass(frozen=True)
class TrackedFrame:
    index: int         # position in the burst
    time_s: float      # since the burst's first frame
    points: Points     # (68, 2)
    box: Box
    detected: bool     # True when the box came from the detector, not from tracking


@dataclass
class FaceTrack:
    frames_seen: int
    frame_size: tuple[int, int]  # (width, height)
    tracked: list[TrackedFrame] = field(default_factory=list)
    # The burst's frames by index, kept by reference (the caller holds them anyway) for the texture witness of
    # the 3-D test (texture.py); None when only landmarks are known (the server's key frames).
    images: list[RGBImage] | None = None

    @property
    def duration_s(self) -> float:
        return self.tracked[-1].time_s - self.tracked[0].time_s if len(self.tracked) > 1 else 0.0


class FaceTracker:
    """Feeds frames one by one (a live camera) or all at once (`track`).

    A frame between two detections is placed when the next detection arrives (`liveness_redetect_s` later at
    most), or when `result` is asked for.
    """

    def __init__(self, landmarker: Landmarker, settings: EngineSettings) -> None:
        self.landmarker, self.settings = landmarker, settings
        self.track_: FaceTrack | None = None
        self._box: Box | None = None
        self._relation: tuple[float, float, float, float] | None = None
        self._carried: Box | None = None
        self._missed = 0
        self._anchor: tuple[int, float, Box] | None = None  # the last detected frame, its time and box
        self._waiting: list[tuple[int, RGBImage, float]] = []  # frames since the anchor, for its successor

    def add(self, image: RGBImage, time_s: float) -> TrackedFrame | None:
        """Landmarks of the main face of this frame, or None when no face is seen or the frame waits for the
        next detection."""
        height, width = image.shape[:2]
        if self.track_ is None:
            self.track_ = FaceTrack(0, (width, height), images=[])
        index = self.track_.frames_seen
        self.track_.frames_seen += 1
        assert self.track_.images is not None
        self.track_.images.append(image)
        # A millisecond of slack: frame times are often rounded (0.1 s after a detection is 3 frames at 30/s).
        if self._anchor is not None and time_s - self._anchor[1] < self.settings.liveness_redetect_s - 1e-3:
            self._waiting.append((index, image, time_s))
            return None
        return self._detect_at(index, image, time_s)

    def result(self) -> FaceTrack:
        """The track so far; frames still waiting are placed first (the last of them is detected)."""
        if self._waiting:
            self._detect_at(*self._waiting.pop())
        return self.track_ or FaceTrack(0, (0, 0))

    def _detect_at(self, index: int, image: RGBImage, time_s: float) -> TrackedFrame | None:
        """Detects the face in this frame, then places the frames that waited for it and this one."""
        found = self.landmarker.detect(image, self._box)
        waiting, self._waiting = self._waiting, []
        anchor = self._anchor
        if found is not None and anchor is not None and waiting and _agree(anchor[2], found):
            for at, frame, frame_s in waiting:
                box = _between(anchor[2], found, (at - anchor[0]) / (index - anchor[0]))
                self._place(at, frame, frame_s, box, detected=False)
        elif waiting:
            moved_from = self._box
            for at, frame, frame_s in waiting:
                self._step(at, frame, frame_s, self.landmarker.detect(frame, self._box))
            if found is None and self._box is not None and self._box != moved_from:
                found = self.landmarker.detect(image, self._box)
        return self._step(index, image, time_s, found)

    def _step(self, index: int, image: RGBImage, time_s: float, found: Box | None) -> TrackedFrame | None:
        """One frame with its own detection (None: missed): a first miss is carried, a second ends the track."""
        if found is not None:
            box, detected, self._missed = found, True, 0
        elif self._carried is not None and self._missed == 0:
            box, detected, self._missed = self._carried, False, 1
        else:
            self._lose()
            return None
        frame = self._place(index, image, time_s, box, detected)
        if frame is None:
            self._lose()
            return None
        if detected:
            self._relation = _box_relation(box, frame.points)
            self._anchor = (index, time_s, box)
        self._box = box
        self._carried = _next_box(frame.points, self._relation, self.track_.frame_size if self.track_ else (0, 0))
        return frame

    def _place(self, index: int, image: RGBImage, time_s: float, box: Box, detected: bool) -> TrackedFrame | None:
        """The frame's landmarks from `box`, kept when they still describe a face of the box's size."""
        assert self.track_ is not None
        points = self.landmarker.landmarks(image, box)
        if points is None or not _plausible(points, box):
            return None
        frame = TrackedFrame(index, time_s, points, box, detected)
        self.track_.tracked.append(frame)  # in order: frames wait only for a later one
        return frame

    def _lose(self) -> None:
        self._box = self._carried = self._anchor = None


def track_frames(frames: Sequence[RGBImage], times_s: Sequence[float], landmarker: Landmarker,
                 settings: EngineSettings) -> FaceTrack:
    """The main face through a burst."""
    tracker = FaceTracker(landmarker, settings)
    for image, time_s in zip(frames, times_s, strict=True):
        tracker.add(image, time_s)
    return tracker.result()


def _box_relation(box: Box, points: Points) -> tuple[float, float, float, float]:
    """The detector's box relative to the landmarks' bounding box (the predictor expects detector boxes)."""
    low, high = points.min(axis=0), points.max(axis=0)
    size = np.maximum(high - low, 1.0)
    centre = (low + high) / 2.0
    return (((box.left + box.right) / 2.0 - centre[0]) / size[0], ((box.top + box.bottom) / 2.0 - centre[1]) / size[1],
            box.width / size[0], box.height / size[1])


def _next_box(points: Points, relation: tuple[float, float, float, float] | None,
              frame_size: tuple[int, int]) -> Box | None:
    if relation is None:
        return None
    low, high = points.min(axis=0), points.max(axis=0)
    size = np.maximum(high - low, 1.0)
    cx = (low[0] + high[0]) / 2.0 + relation[0] * size[0]
    cy = (low[1] + high[1]) / 2.0 + relation[1] * size[1]
    half_w, half_h = relation[2] * size[0] / 2.0, relation[3] * size[1] / 2.0
    width, height = frame_size
    if cx < 0 or cy < 0 or cx > width or cy > height:
        return None  # the face left the frame
    return Box(int(round(cy - half_h)), int(round(cx + half_w)), int(round(cy + half_h)), int(round(cx - half_w)))


def _agree(first: Box, second: Box) -> bool:
    """Two detections of the same face a few frames apart: about the same size and place.

    A detector's box size wavers by a pyramid step (1.2x) between frames; more, or a centre moved by more than a
    third of the face, is a jump the frames in between should not be interpolated over.
    """
    size = max(first.width, first.height, 1)
    ratio = max(second.width, 1) / max(first.width, 1)
    moved = np.hypot((second.left + second.right - first.left - first.right) / 2.0,
                     (second.top + second.bottom - first.top - first.bottom) / 2.0)
    return 1 / 1.5 <= ratio <= 1.5 and moved <= size / 3


def _between(first: Box, second: Box, weight: float) -> Box:
    """The box `weight` of the way from `first` to `second` (0: first, 1: second)."""
    def mix(a: int, b: int) -> int:
        return int(round(a + (b - a) * weight))

    return Box(mix(first.top, second.top), mix(first.right, second.right), mix(first.bottom, second.bottom),
               mix(first.left, second.left))


def _plausible(points: Points, box: Box) -> bool:
    """Landmarks that still describe a face of about the box's size (not a predictor lost on background)."""
    unit = inter_ocular(points)
    return 0.2 * box.width < unit < 0.8 * box.width
