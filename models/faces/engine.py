"""FaceEngine: the one object the edge client, the server and enrollment use to look at faces."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models.errors import FaceQualityError, MultipleFaces, NoFace, ReasonCode, all_error_classes
from models.faces._fr import face_recognition
from models.faces.decode import RGBImage
from models.faces.detect import Box, detect_faces
from models.faces.liveness import LivenessResult, assess_liveness, eye_aspect_ratio, passive_cues
from models.faces.match import Encoding, fuse_burst
from models.faces.quality import Landmarks, QualityReport, assess_quality
from models.settings import EngineSettings

_ERROR_BY_CODE: dict[ReasonCode, type[FaceQualityError]] = {
    cls.code: cls for cls in all_error_classes() if issubclass(cls, FaceQualityError)
}


@dataclass(frozen=True)
class DetectedFace:
    box: Box
    landmarks: Landmarks
    quality: QualityReport
    encoding: Encoding | None = None


@dataclass(frozen=True)
class FrameAnalysis:
    faces: list[DetectedFace]  # largest first

    @property
    def largest(self) -> DetectedFace | None:
        return self.faces[0] if self.faces else None


@dataclass(frozen=True)
class EnrolledFace:
    encoding: Encoding
    crop_rgb: RGBImage
    quality: QualityReport
    background_faces: int = 0


@dataclass(frozen=True)
class BurstResult:
    encoding: Encoding | None
    crop_rgb: RGBImage | None
    liveness: LivenessResult
    frames_seen: int
    frames_with_face: int
    frames_used: int
    other_faces: int
    quality: QualityReport | None
    reasons: tuple[str, ...] = field(default=())


class FaceEngine:
    """Detection, gates, encodings and liveness under one set of `EngineSettings`."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()

    # --- single frames -----------------------------------------------------------------------------
    def analyze(
        self, image: RGBImage, *, encode: bool = True, encode_all: bool = False, thorough: bool = False
    ) -> FrameAnalysis:
        """Detect every face, measure its quality and (for the largest, or all) compute its encoding.

        Frames are analysed without the slow detector fallback (`thorough`): a burst has other frames.
        """
        boxes = detect_faces(image, self.settings, thorough=thorough)
        faces = []
        for index, box in enumerate(boxes):
            landmarks = self._landmarks(image, box)
            quality = assess_quality(image, box, landmarks, self.settings)
            wants = encode and (encode_all or index == 0)
            faces.append(DetectedFace(box, landmarks, quality, self.encode(image, box) if wants else None))
        return FrameAnalysis(faces)

    def encode(self, image: RGBImage, box: Box) -> Encoding:
        """128-d encoding of the face in `box`, computed on the full-resolution image."""
        clipped = _clip_box(box, image.shape)
        found = face_recognition().face_encodings(
            image, known_face_locations=[clipped.as_css()], num_jitters=self.settings.num_jitters, model="small"
        )
        return np.asarray(found[0], dtype=np.float64)

    def encode_largest(self, image: RGBImage, *, thorough: bool = True) -> Encoding | None:
        """The bed-check policy without gates: the largest face's encoding, or None when there is no face."""
        boxes = detect_faces(image, self.settings, thorough=thorough)
        return self.encode(image, boxes[0]) if boxes else None

    def enroll_face(self, image: RGBImage) -> EnrolledFace:
        """Apply the enrollment gates; raise the failing gate's error, else return encoding and thumbnail.

        Exactly one face is required, except that faces much smaller than the main one
        (`secondary_face_ratio`) are people in the background and are counted, not refused.
        """
        boxes = detect_faces(image, self.settings)
        if not boxes:
            raise NoFace()
        main = boxes[0]
        rivals = [b for b in boxes[1:] if b.height >= self.settings.secondary_face_ratio * main.height]
        if rivals:
            raise MultipleFaces(faces=len(rivals) + 1)
        landmarks = self._landmarks(image, main)
        quality = assess_quality(image, main, landmarks, self.settings)
        if not quality.passed:
            raise _ERROR_BY_CODE[quality.failures[0]](None, **quality.as_dict())
        return EnrolledFace(
            encoding=self.encode(image, main),
            crop_rgb=self.crop(image, main),
            quality=quality,
            background_faces=len(boxes) - 1,
        )

    def crop(self, image: RGBImage, box: Box) -> RGBImage:
        """Evidence crop: the face with a margin, at most `crop_max_side_px` on its longer side."""
        margin_x = int(box.width * self.settings.crop_margin)
        margin_y = int(box.height * self.settings.crop_margin)
        height, width = image.shape[:2]
        top, bottom = max(box.top - margin_y, 0), min(box.bottom + margin_y, height)
        left, right = max(box.left - margin_x, 0), min(box.right + margin_x, width)
        crop = image[top:bottom, left:right]
        longest = max(crop.shape[:2])
        if longest > self.settings.crop_max_side_px:
            scale = self.settings.crop_max_side_px / longest
            size = (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.uint8, copy=False)
        return np.ascontiguousarray(crop)

    # --- capture bursts ----------------------------------------------------------------------------
    def check_burst(self, frames: list[RGBImage], *, encode_best: int = 3) -> BurstResult:
        """Judge one capture burst at a bed: liveness over all frames, encoding fused from the best few.

        Every frame is detected and landmarked (cheap; blinks need them all); only the `encode_best`
        sharpest usable frames are encoded (the expensive step), then fused.
        """
        seen: list[tuple[int, DetectedFace]] = []
        ears: list[float] = []
        other_faces = 0
        for index, frame in enumerate(frames):
            analysis = self.analyze(frame, encode=False)
            if analysis.largest is None:
                continue
            seen.append((index, analysis.largest))
            ears.append(eye_aspect_ratio(analysis.largest.landmarks))
            other_faces = max(other_faces, len(analysis.faces) - 1)
        if not seen:
            liveness = LivenessResult(False, 0.0, False, 0.0, ("no_face",))
            return BurstResult(None, None, liveness, len(frames), 0, 0, 0, None, ("no_face",))

        ranked = sorted(seen, key=lambda item: (item[1].quality.passed, item[1].quality.sharpness), reverse=True)
        best = ranked[: max(1, encode_best)]
        cues = [passive_cues(frames[i], face.box) for i, face in best]
        liveness = assess_liveness(ears, cues, self.settings)
        encodings = [self.encode(frames[i], face.box) for i, face in best]
        fused, used = fuse_burst(encodings, self.settings.burst_agreement, self.settings.burst_min_frames)
        top_index, top_face = best[used[0]] if used else best[0]
        reasons: list[str] = list(top_face.quality.failures)
        if fused is None:
            reasons.append("frames_disagree")
        return BurstResult(
            encoding=fused,
            crop_rgb=self.crop(frames[top_index], top_face.box),
            liveness=liveness,
            frames_seen=len(frames),
            frames_with_face=len(seen),
            frames_used=len(used),
            other_faces=other_faces,
            quality=top_face.quality,
            reasons=tuple(str(r) for r in reasons),
        )

    def _landmarks(self, image: RGBImage, box: Box) -> Landmarks:
        found = face_recognition().face_landmarks(image, [_clip_box(box, image.shape).as_css()], model="large")
        return dict(found[0]) if found else {}


def _clip_box(box: Box, shape: tuple[int, ...]) -> Box:
    height, width = shape[:2]
    return Box(max(box.top, 0), min(box.right, width), min(box.bottom, height), max(box.left, 0))
