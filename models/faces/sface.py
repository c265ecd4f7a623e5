"""The SFace engine: YuNet detection (box + 5 landmarks), 5-point alignment to 112 px, SFace 128-d embedding.

Both networks are OpenCV Zoo int8 models run by OpenCV itself (`cv2.FaceDetectorYN`, `cv2.FaceRecognizerSF`),
on OpenCV 4.x (the int8 SFace model fails in 5.x's `feature()`). Embeddings are scaled to unit length, so the
project's one distance, Euclidean, is sqrt(2 - 2 cos) for this engine: the Zoo's cosine threshold 0.363 is
a distance of 1.129.

Detection runs on a copy at most `detect_max_side_px` on its longer side; landmarks are scaled back and the
alignment reads the full-resolution frame. YuNet finds faces down to about 10 px, so small images are not
upsampled (on LFW's 250 px images upsampling to 320 px moved the landmarks and cost 0.2 % accuracy).

OpenCV's detector keeps its input size as state and is not thread-safe: one pair of networks per thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.model_files import SFACE, YUNET, cached_verified
from models.settings import EngineSettings

_NMS_THRESHOLD = 0.3
_TOP_K = 500


@dataclass(frozen=True)
class YunetFace:
    """One YuNet detection in original-image pixels: x, y, w, h, 5 landmarks (x, y), score."""

    row: NDArray[np.float32]  # the 15 numbers FaceRecognizerSF.alignCrop expects

    @property
    def box(self) -> Box:
        x, y, w, h = (float(v) for v in self.row[:4])
        return Box(top=int(round(y)), right=int(round(x + w)), bottom=int(round(y + h)), left=int(round(x)))

    @property
    def points(self) -> NDArray[np.float32]:
        """(5, 2): right eye, left eye (as the subject sees them: image left first), nose tip, mouth corners."""
        return self.row[4:14].reshape(5, 2)

    @property
    def score(self) -> float:
        return float(self.row[14])


class _Networks(threading.local):
    detector: Any = None
    recognizer: Any = None
    score_threshold: float = -1.0


_local = _Networks()


def _detector(score_threshold: float) -> Any:
    if _local.detector is None or _local.score_threshold != score_threshold:
        yunet = np.frombuffer(cached_verified(YUNET), dtype=np.uint8)
        _local.detector = cv2.FaceDetectorYN.create("onnx", yunet, np.zeros(0, np.uint8), (320, 320),
                                                    score_threshold, _NMS_THRESHOLD, _TOP_K)
        _local.score_threshold = score_threshold
    return _local.detector


def _recognizer() -> Any:
    if _local.recognizer is None:
        sface = np.frombuffer(cached_verified(SFACE), dtype=np.uint8)
        _local.recognizer = cv2.FaceRecognizerSF.create("onnx", sface, np.zeros(0, np.uint8))
    return _local.recognizer


def load_models() -> None:
    """Reads and checks both model files now (raises ModelFileMissing / ModelFileAltered), not at first face."""
    cached_verified(YUNET)
    cached_verified(SFACE)


def detect(image: RGBImage, settings: EngineSettings) -> list[YunetFace]:
    """Every face YuNet finds above `sface_min_score`, largest first, in `image` coordinates."""
    detector = _detector(settings.sface_min_score)
    height, width = image.shape[:2]
    scale = min(1.0, settings.detect_max_side_px / max(height, width))
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if scale < 1.0:
        size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    detector.setInputSize((bgr.shape[1], bgr.shape[0]))
    _, found = detector.detect(bgr)
    if found is None:
        return []
    faces = []
    for raw in np.asarray(found, dtype=np.float32):
        row = raw.copy()
        row[:14] /= scale
        if row[2] > 1 and row[3] > 1:
            faces.append(YunetFace(row))
    return sorted(faces, key=lambda f: f.box.area, reverse=True)


def encode(image: RGBImage, face: YunetFace) -> NDArray[np.float64]:
    """Unit-length 128-d SFace embedding of `face`, aligned on its 5 landmarks in the full-resolution image."""
    recognizer = _recognizer()
    # Only the face's neighbourhood is converted and handed to the aligner: a 1080p frame costs what a crop does.
    box = face.box
    height, width = image.shape[:2]
    top, left = max(0, box.top - box.height), max(0, box.left - box.width)
    bottom, right = min(height, box.bottom + box.height), min(width, box.right + box.width)
    bgr = cv2.cvtColor(np.ascontiguousarray(image[top:bottom, left:right]), cv2.COLOR_RGB2BGR)
    row = face.row.copy()
    row[[0, 4, 6, 8, 10, 12]] -= left  # x of the box and of each landmark
    row[[1, 5, 7, 9, 11, 13]] -= top
    aligned = recognizer.alignCrop(bgr, row)
    vector = np.asarray(recognizer.feature(aligned), dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def points_as_landmarks(face: YunetFace) -> dict[str, list[tuple[int, int]]]:
    """The 5 points in the Landmarks shape the quality gates read (eyes and nose tip), one point each."""
    points = face.points
    as_int = [(int(round(float(x))), int(round(float(y)))) for x, y in points]
    return {"left_eye": [as_int[0]], "right_eye": [as_int[1]], "nose_tip": [as_int[2]],
            "top_lip": [as_int[3], as_int[4]]}
