"""FaceEngine: the one object the edge client, the server and enrollment use to look at faces.

Two backends behind one interface, chosen by `EngineSettings.engine`: `sface` (YuNet detection with 5
landmarks, SFace embedding; models/faces/sface.py) and `dlib` (HOG/CNN detection, 68 landmarks, ResNet
embedding through face_recognition). Liveness reads its own landmarks, whatever embeds: Face Mesh through
models/faces/liveness/track.py `default_landmarker`; dlib's 68-point predictor (`landmarks68`, iBUG 300-W,
non-commercial terms) is used only by the dlib engine.

Evidence crops (`crop`): the face box plus `crop_margin` (35 %) on each side, at most `crop_max_side_px`
(256 px). That is what a device uploads and what enrollment keeps as the face chip, and both backends find
the face in it again (`encode_crop`): a face of ~150 px with context around it; measured on lfw_dev the
crop's re-encoding lies within the engine's `tamper_tolerance` of the full frame's (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from models.errors import FaceQualityError, MultipleFaces, NoFace, ReasonCode, all_error_classes
from models.faces import sface
from models.faces._fr import face_recognition
from models.faces.decode import RGBImage
from models.faces.detect import Box, detect_faces
from models.faces.engines import EngineName
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
    yunet: sface.YunetFace | None = None  # the sface backend's detection (box, 5 landmarks), for encoding


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
    crop_frame: int | None = None  # index in the frames given of the frame the crop was cut from


class FaceEngine:
    """Detection, gates, encodings and liveness under one set of `EngineSettings`."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        self.name = EngineName(self.settings.engine)
        if self.name == EngineName.SYNTHETIC:
            raise ValueError("the synthetic engine has no images to look at")

    @property
    def tag(self) -> str:
        """Stored with every embedding this engine makes (engine name and model versions)."""
        return self.settings.engine_tag

    def load(self) -> FaceEngine:
        """Loads (and for sface checks the sha256 of) the models now rather than at the first face."""
        if self.name == EngineName.SFACE:
            sface.load_models()
        else:
            face_recognition()
        return self

    # --- single frames -----------------------------------------------------------------------------
    def analyze(
        self, image: RGBImage, *, encode: bool = True, encode_all: bool = False, thorough: bool = False,
        landmarks68: bool = False,
    ) -> FrameAnalysis:
        """Detect every face, measure its quality and (for the largest, or all) compute its encoding.

        Frames are analysed without the slow detector fallback (`thorough`): a burst has other frames.
        `landmarks68`: dlib's 68 points for each face even when the sface backend detects (not on any default
        path: the predictor's terms are non-commercial; liveness has its own landmarks).
        """
        faces = []
        for index, (box, yunet) in enumerate(self._detect(image, thorough=thorough)):
            if landmarks68 or yunet is None:
                landmarks = self.landmarks68(image, box)
            else:
                landmarks = sface.points_as_landmarks(yunet)
            quality = assess_quality(image, box, landmarks, self.settings)
            face = DetectedFace(box, landmarks, quality, None, yunet)
            if encode and (encode_all or index == 0):
                face = DetectedFace(box, landmarks, quality, self.encode(image, face), yunet)
            faces.append(face)
        return FrameAnalysis(faces)

    def encode(self, image: RGBImage, face: DetectedFace | Box) -> Encoding:
        """128-d embedding of one detected face, computed on the full-resolution image.

        A bare `Box` is accepted by the dlib backend; the sface backend aligns on its own 5 landmarks and
        re-detects inside the box when only a box is given.
        """
        if self.name == EngineName.SFACE:
            yunet = face.yunet if isinstance(face, DetectedFace) else None
            if yunet is None:
                yunet = self._yunet_in(image, face.box if isinstance(face, DetectedFace) else face)
            return sface.encode(image, yunet)
        box = face.box if isinstance(face, DetectedFace) else face
        clipped = _clip_box(box, image.shape)
        found = face_recognition().face_encodings(
            image, known_face_locations=[clipped.as_css()], num_jitters=self.settings.num_jitters, model="small"
        )
        return np.asarray(found[0], dtype=np.float64)

    def encode_largest(self, image: RGBImage, *, thorough: bool = True) -> Encoding | None:
        """The bed-check policy without gates: the largest face's encoding, or None when there is no face."""
        found = self._detect(image, thorough=thorough)
        if not found:
            return None
        box, yunet = found[0]
        return self.encode(image, DetectedFace(box, {}, _NO_QUALITY, None, yunet))

    def encode_crop(self, crop: RGBImage) -> tuple[Encoding, str]:
        """Embedding of the largest face in an evidence crop or enrollment chip, with this engine's tag.

        What the server uses to judge an uploaded crop itself, and `enroll reencode` to change engine: the
        crop is searched with the thorough detector (it is one image, not a burst). Raises NoFace.
        """
        encoding = self.encode_largest(crop, thorough=True)
        if encoding is None:
            raise NoFace("no face found in the crop")
        return encoding, self.tag

    def landmarks68(self, image: RGBImage, box: Box) -> Landmarks:
        """dlib's 68 points (face_recognition's named groups) of the face in `box`, whichever backend embeds."""
        found = face_recognition().face_landmarks(image, [_clip_box(box, image.shape).as_css()], model="large")
        return dict(found[0]) if found else {}

    def enroll_face(self, image: RGBImage) -> EnrolledFace:
        """Apply the enrollment gates; raise the failing gate's error, else return encoding and thumbnail.

        Exactly one face is required, except that faces much smaller than the main one
        (`secondary_face_ratio`) are people in the background and are counted, not refused.
        """
        found = self._detect(image, thorough=True)
        if not found:
            raise NoFace()
        main, yunet = found[0]
        rivals = [b for b, _ in found[1:] if b.height >= self.settings.secondary_face_ratio * main.height]
        if rivals:
            raise MultipleFaces(faces=len(rivals) + 1)
        landmarks = sface.points_as_landmarks(yunet) if yunet is not None else self.landmarks68(image, main)
        quality = assess_quality(image, main, landmarks, self.settings)
        if not quality.passed:
            raise _ERROR_BY_CODE[quality.failures[0]](None, **quality.as_dict())
        return EnrolledFace(
            encoding=self.encode(image, DetectedFace(main, landmarks, quality, None, yunet)),
            crop_rgb=self.crop(image, main),
            quality=quality,
            background_faces=len(found) - 1,
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

        Every frame is detected and its quality measured on the engine's own landmarks (blinks and actions are
        judged on the liveness track, not here); only the `encode_best` sharpest usable frames are encoded (the
        expensive step), then fused.
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
        encodings = [self.encode(frames[i], face) for i, face in best]
        fused, used = fuse_burst(encodings, self.settings.burst_agreement, self.settings.burst_min_frames)
        if fused is not None and self.name == EngineName.SFACE:
            fused = fused / max(float(np.linalg.norm(fused)), 1e-12)  # SFace embeddings are unit vectors
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
            crop_frame=top_index,
        )

    # --- detection, per backend --------------------------------------------------------------------
    def _detect(self, image: RGBImage, *, thorough: bool) -> list[tuple[Box, sface.YunetFace | None]]:
        """Faces largest first. sface: YuNet on every path (it has no slower fallback to skip)."""
        if self.name == EngineName.SFACE:
            return self._confident(image, [(face.box, face) for face in sface.detect(image, self.settings)],
                                   thorough=thorough)
        return [(box, None) for box in detect_faces(image, self.settings, thorough=thorough)]

    def _confident(self, image: RGBImage, found: list[tuple[Box, sface.YunetFace | None]], *,
                   thorough: bool) -> list[tuple[Box, sface.YunetFace | None]]:
        """The detections that count as faces, on every path (enrollment, bed check, eval, crops): YuNet's
        confident ones, and its doubtful ones that dlib's HOG detector finds too. A frame of a burst asks HOG
        only (`thorough` False): its CNN fallback on a frame where HOG finds nothing cost 4x the dlib engine's
        whole frame (scripts/bench_engine.py, 640x480)."""
        doubtful = [b for b, y in found if y is not None and y.score < self.settings.sface_sure_score]
        if not doubtful:
            return found
        hog = detect_faces(image, self.settings, thorough=thorough)
        boxes = [b for b, _ in found]
        # Each HOG face vouches for the one YuNet box it overlaps most, and only when they really overlap.
        best = [max(boxes, key=functools.partial(_overlap, h)) for h in hog]
        confirmed = {id(b) for h, b in zip(hog, best, strict=True)
                     if any(b is d for d in doubtful) and _overlap(h, b) > 0.3 * b.area}
        return [(b, y) for b, y in found
                if y is None or y.score >= self.settings.sface_sure_score or id(b) in confirmed]

    def _yunet_in(self, image: RGBImage, box: Box) -> sface.YunetFace:
        """The YuNet detection that best overlaps `box` (for callers that kept only a box)."""
        found = sface.detect(image, self.settings)
        if not found:
            raise NoFace("no face found where the box is")
        return max(found, key=lambda f: _overlap(f.box, box))


_NO_QUALITY = QualityReport(0.0, 0.0, 0.0, 0.0, False)


def _overlap(a: Box, b: Box) -> int:
    return max(0, min(a.right, b.right) - max(a.left, b.left)) * max(0, min(a.bottom, b.bottom) - max(a.top, b.top))


def _clip_box(box: Box, shape: tuple[int, ...]) -> Box:
    height, width = shape[:2]
    return Box(max(box.top, 0), min(box.right, width), min(box.bottom, height), max(box.left, 0))
