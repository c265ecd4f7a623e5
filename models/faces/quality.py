"""Quality gates on one detected face: size, edge, blur, exposure, pose.

Each gate measures a number, compares it with a setting and, when it fails, names its `ReasonCode`.
Face size is measured between the eye centres: the detector's box is coarse (it comes from a few fixed
scales), while dlib encodes a 150 px chip aligned on the eyes, so the eye distance says how much of that
chip is real detail rather than interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models.errors import ReasonCode
from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.engines import EngineName
from models.settings import EngineSettings

Landmarks = dict[str, list[tuple[int, int]]]


@dataclass(frozen=True)
class QualityReport:
    """Measurements of one face and the gates it failed (empty `failures` = usable)."""

    eye_distance_px: float
    sharpness: float
    brightness: float
    yaw_ratio: float
    at_edge: bool
    failures: tuple[ReasonCode, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, object]:
        return {
            "eye_distance_px": round(self.eye_distance_px, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "yaw_ratio": round(self.yaw_ratio, 3),
            "at_edge": self.at_edge,
            "failures": [f.value for f in self.failures],
        }


def assess_quality(image: RGBImage, box: Box, landmarks: Landmarks, settings: EngineSettings) -> QualityReport:
    """Measure one face and list the gates it fails, in order of how actionable they are."""
    height, width = image.shape[:2]
    margin = settings.edge_margin_px
    at_edge = (
        box.top <= margin or box.left <= margin or box.bottom >= height - margin or box.right >= width - margin
    )
    eye_distance, yaw = _eye_geometry(landmarks)
    grey = cv2.cvtColor(_clip(image, box), cv2.COLOR_RGB2GRAY)
    brightness = float(grey.mean()) if grey.size else 0.0
    sharpness = _sharpness(grey)

    failures: list[ReasonCode] = []
    if at_edge:
        failures.append(ReasonCode.FACE_AT_EDGE)
    min_face_px = settings.sface_min_face_px if settings.engine == EngineName.SFACE else settings.min_face_px
    if eye_distance < settings.min_eye_distance_px or min(box.width, box.height) < min_face_px:
        failures.append(ReasonCode.FACE_TOO_SMALL)
    if brightness < settings.min_brightness:
        failures.append(ReasonCode.FACE_TOO_DARK)
    elif brightness > settings.max_brightness:
        failures.append(ReasonCode.FACE_OVEREXPOSED)
    if sharpness < settings.min_sharpness:
        failures.append(ReasonCode.FACE_BLURRED)
    if yaw > settings.max_yaw_ratio:
        failures.append(ReasonCode.FACE_NOT_FRONTAL)
    return QualityReport(eye_distance, sharpness, brightness, yaw, at_edge, tuple(failures))


def eye_centres(landmarks: Landmarks) -> tuple[np.ndarray, np.ndarray]:
    left = np.asarray(landmarks["left_eye"], dtype=np.float64).mean(axis=0)
    right = np.asarray(landmarks["right_eye"], dtype=np.float64).mean(axis=0)
    return left, right


def _eye_geometry(landmarks: Landmarks) -> tuple[float, float]:
    """Eye distance in pixels and yaw as the nose tip's offset from the eye midpoint per eye distance."""
    left, right = eye_centres(landmarks)
    eye_distance = float(np.linalg.norm(right - left))
    if eye_distance == 0.0:
        return 0.0, 1.0
    nose_tip = np.asarray(landmarks["nose_tip"], dtype=np.float64).mean(axis=0)
    axis = (right - left) / eye_distance
    offset = float(np.dot(nose_tip - (left + right) / 2.0, axis))
    return eye_distance, abs(offset) / eye_distance


def _clip(image: RGBImage, box: Box) -> RGBImage:
    height, width = image.shape[:2]
    top, bottom = max(box.top, 0), min(box.bottom, height)
    left, right = max(box.left, 0), min(box.right, width)
    return image[top:bottom, left:right]


def _sharpness(grey: np.ndarray) -> float:
    # Resized to a fixed size so the measure does not depend on how large the face is in the frame.
    if grey.size == 0:
        return 0.0
    fixed = cv2.resize(grey, (128, 128), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(fixed, cv2.CV_64F).var())
