"""A face followed through a burst: landmarks of the main face in every frame, cheaply.

Detecting a face in a whole 640x480 frame costs tens of milliseconds; once the face is known, it is looked for
again only in a window around where it was, scaled so the face is about the detector's smallest size, which
costs a few. Every frame's landmarks are predicted from a detector box (what dlib's predictor was trained on):
boxes carried over from the previous frame's landmarks drift on a moving face and make up a 3-D motion.
When the face escapes the detector for one frame (a strongly turned head), that frame uses the box of the
previous landmarks; a second miss in a row ends the track until the face is found again.

The liveness code needs only a `Landmarker`; the default one is dlib's HOG detector and 68-point shape
predictor through face_recognition, whatever engine computes the embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.liveness.geometry import Points, inter_ocular, points_from_parts
from models.settings import EngineSettings


class Landmarker(Protocol):
    """Finds the main face of a frame (near a previous box when given) and predicts its 68 landmarks."""

    def detect(self, image: RGBImage, near: Box | None = None) -> Box | None: ...

    def landmarks(self, image: RGBImage, box: Box) -> Points | None: ...


# The face is searched for at about this width in the window around its last box: HOG's window is 80 px.
_WINDOW_FACE_PX = 110


@dataclass
class DlibLandmarker:
    """dlib's HOG detector (whole frame reduced, or a window round the last face) and its 68-point predictor."""

    settings: EngineSettings

    def detect(self, image: RGBImage, near: Box | None = None) -> Box | None:
        from models.faces.detect import detect_faces

        if near is not None:
            found = self._detect_near(image, near)
            if found is not None:
                return found
        small = self.settings.model_copy(update={"detect_max_side_px": self.settings.liveness_detect_side_px})
        boxes = detect_faces(image, small, thorough=False)
        return boxes[0] if boxes else None

    def _detect_near(self, image: RGBImage, near: Box) -> Box | None:
        import cv2

        from models.faces._fr import face_recognition

        height, width = image.shape[:2]
        size = max(near.width, near.height, 1)
        top, bottom = max(0, near.top - size), min(height, near.bottom + size)
        left, right = max(0, near.left - size), min(width, near.right + size)
        window: np.ndarray = image[top:bottom, left:right]
        if window.size == 0:
            return None
        scale = min(1.0, _WINDOW_FACE_PX / size)
        if scale < 1.0:
            window = cv2.resize(window, (max(1, int(window.shape[1] * scale)), max(1, int(window.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA)
        upsample = 1 if size * scale < 90 else 0
        found = face_recognition().face_locations(np.ascontiguousarray(window), upsample, "hog")
        if not found:
            return None
        t, r, b, lft = max(found, key=lambda c: (c[1] - c[3]) * (c[2] - c[0]))
        return Box(int(top + t / scale), int(left + r / scale), int(top + b / scale), int(left + lft / scale))

    def landmarks(self, image: RGBImage, box: Box) -> Points | None:
        from models.faces._fr import face_recognition

        height, width = image.shape[:2]
        css = (max(box.top, 0), min(box.right, width), min(box.bottom, height), max(box.left, 0))
        found = face_recognition().face_landmarks(image, [css], model="large")
        return points_from_parts(dict(found[0])) if found else None


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
    """Feeds frames one by one (a live camera) or all at once (`track`)."""

    def __init__(self, landmarker: Landmarker, settings: EngineSettings) -> None:
        self.landmarker, self.settings = landmarker, settings
        self.track_: FaceTrack | None = None
        self._box: Box | None = None
        self._relation: tuple[float, float, float, float] | None = None
        self._carried: Box | None = None
        self._missed = 0

    def add(self, image: RGBImage, time_s: float) -> TrackedFrame | None:
        """Landmarks of the main face of this frame, or None when no face is seen."""
        height, width = image.shape[:2]
        if self.track_ is None:
            self.track_ = FaceTrack(0, (width, height), images=[])
        index = self.track_.frames_seen
        self.track_.frames_seen += 1
        assert self.track_.images is not None
        self.track_.images.append(image)
        found = self.landmarker.detect(image, self._box)
        if found is not None:
            box, detected, self._missed = found, True, 0
        elif self._carried is not None and self._missed == 0:
            box, detected, self._missed = self._carried, False, 1
        else:
            self._box = self._carried = None
            return None
        points = self.landmarker.landmarks(image, box)
        if points is None or not _plausible(points, box):
            self._box = self._carried = None
            return None
        if detected:
            self._relation = _box_relation(box, points)
        frame = TrackedFrame(index, time_s, points, box, detected)
        self.track_.tracked.append(frame)
        self._box = box
        self._carried = _next_box(points, self._relation, (width, height))
        return frame

    def result(self) -> FaceTrack:
        return self.track_ or FaceTrack(0, (0, 0))


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


def _plausible(points: Points, box: Box) -> bool:
    """Landmarks that still describe a face of about the box's size (not a predictor lost on background)."""
    unit = inter_ocular(points)
    return 0.2 * box.width < unit < 0.8 * box.width
