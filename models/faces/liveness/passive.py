"""Passive single-frame cues, kept only as reported cues with a small weight.

They never refuse a capture on their own: fitted to three sample images, they accepted nearly every print and
screen attack tried on them and refused ordinary photos of genuine patients. Liveness comes from what a still
or a replayed clip cannot do (models/faces/liveness/judge.py); a burst judged without a challenge or a
motion window is never live.

Cues, each in [0, 1] where 1 looks like a presentation attack:
- frame: a presented photo or screen has its own straight border close around the face.
- moire: a screen re-photographed shows isolated peaks in the high frequencies of the face's spectrum.
- colour: paper washes out skin colour and a screen adds a cast (saturation mean and spread).
- flatness: a print or screen compresses the face's dynamic range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.quality import Landmarks
from models.settings import EngineSettings


@dataclass(frozen=True)
class LivenessResult:
    is_live: bool
    score: float
    blink_detected: bool
    passive_score: float
    reasons: tuple[str, ...] = field(default=())
    cues: dict[str, float] = field(default_factory=dict)
    method: str = "none"                       # challenge | motion | none
    actions: tuple[Any, ...] = field(default=())  # ActionResult per challenge action, in order
    planarity: Any = None                      # PlanarityResult of the 3-D test
    key_frames: tuple[tuple[str, int], ...] = field(default=())  # (role, burst frame index)
    motion: float | None = None                # bed cameras: landmark change over the window


def eye_aspect_ratio(landmarks: Landmarks) -> float:
    """Mean EAR of both eyes from face_recognition's named landmark groups."""
    ratios = []
    for key in ("left_eye", "right_eye"):
        p = np.asarray(landmarks.get(key, []), dtype=np.float64)
        if p.shape != (6, 2):
            continue
        width = np.linalg.norm(p[0] - p[3])
        if width == 0:
            continue
        ratios.append((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))
    return float(np.mean(ratios)) if ratios else 0.0


def passive_cues(image: RGBImage, box: Box) -> dict[str, float]:
    """Presentation-attack cues of one frame, each in [0, 1] (1 = looks like a photo or screen)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return {
        "frame": _frame_cue(grey, box),
        "moire": _moire_cue(grey, box),
        "flatness": _flatness_cue(grey, box),
        "colour": _colour_cue(image, box),
    }


def passive_score(cues: dict[str, float]) -> float:
    """1 = nothing of a photo or screen seen in the frame; reported, weighted lightly, never decisive."""
    texture = 0.45 * cues["frame"] + 0.35 * cues["moire"] + 0.2 * cues["flatness"]
    attack = max(cues.get("colour", 0.0), texture)
    return float(np.clip(1.0 - attack, 0.0, 1.0))


def assess_liveness(ears: list[float], frame_cues: list[dict[str, float]], settings: EngineSettings) -> LivenessResult:
    """A burst judged without a challenge or motion window: the passive cues are reported, never live.

    `ears` is accepted for the engine's burst API; blinks are judged with the challenge (judge.py).
    """
    if frame_cues:
        cues = {k: float(np.median([c[k] for c in frame_cues])) for k in frame_cues[0]}
        passive = passive_score(cues)
    else:
        cues, passive = {}, 0.0
    return LivenessResult(False, 0.0, False, round(passive, 3), ("no_challenge",), cues)


def _ring(shape: tuple[int, ...], box: Box, scale: float) -> tuple[int, int, int, int]:
    height, width = shape[:2]
    cx, cy = (box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0
    half_w, half_h = box.width * scale / 2.0, box.height * scale / 2.0
    return (
        int(max(0, cy - half_h)), int(min(width, cx + half_w)), int(min(height, cy + half_h)), int(max(0, cx - half_w)),
    )


def _frame_cue(grey: np.ndarray, box: Box) -> float:
    """Long straight edges close beside the face on two or more sides: the border of a photo or screen.

    A photo or tablet held up to the camera is close to it, so its border is long compared with the
    frame and lies near the face; background structure (door frames, bed rails) is farther away and
    broken up by the person. A line counts when it is at least 35% of the frame's side, nearly parallel
    to an image axis, beside the face and within 1.5 face-sizes of it. One side alone is weak evidence
    (0.5); two or more sides are a border (1.0).
    """
    height, width = grey.shape[:2]
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 0), 60, 180)
    min_len = int(0.35 * min(height, width))
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=120, minLineLength=min_len, maxLineGap=8)
    if lines is None:
        return 0.0
    reach_x, reach_y = 1.5 * box.width, 1.5 * box.height
    sides: set[str] = set()
    for x0, y0, x1, y1 in lines[:, 0, :].astype(float):
        angle = abs(np.degrees(np.arctan2(y1 - y0, x1 - x0))) % 180
        x, y = (x0 + x1) / 2, (y0 + y1) / 2
        if min(angle, 180 - angle) < 15 and box.left - reach_x < x < box.right + reach_x:
            if box.top - reach_y <= y < box.top:
                sides.add("above")
            elif box.bottom < y <= box.bottom + reach_y:
                sides.add("below")
        elif abs(angle - 90) < 15 and box.top - reach_y < y < box.bottom + reach_y:
            if box.left - reach_x <= x < box.left:
                sides.add("left")
            elif box.right < x <= box.right + reach_x:
                sides.add("right")
    return {0: 0.0, 1: 0.5}.get(len(sides), 1.0)


def _moire_cue(grey: np.ndarray, box: Box) -> float:
    top, right, bottom, left = _ring(grey.shape, box, 1.0)
    face = grey[top:bottom, left:right]
    # Below this size JPEG's 8x8 blocks dominate the high frequencies and look like a moire pattern.
    if min(face.shape[:2]) < 150:
        return 0.0
    face = cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float64)
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(face - face.mean())))
    yy, xx = np.mgrid[-64:64, -64:64]
    radius = np.hypot(yy, xx)
    high = spectrum[(radius > 24) & (radius < 60)]
    if high.size == 0 or high.mean() == 0:
        return 0.0
    peakiness = float(np.percentile(high, 99.9) / (np.median(high) + 1e-9))
    return float(np.clip((peakiness - 12.0) / 20.0, 0.0, 1.0))


def _flatness_cue(grey: np.ndarray, box: Box) -> float:
    top, right, bottom, left = _ring(grey.shape, box, 0.8)
    face = grey[top:bottom, left:right]
    if face.size == 0:
        return 0.0
    spread = float(np.percentile(face, 95) - np.percentile(face, 5))
    return float(np.clip((90.0 - spread) / 60.0, 0.0, 1.0))


# Saturation (HSV, 0-255) of live skin under room light, from camera captures: the mean stays within
# roughly 55-150 and the spread within roughly 15-46; recaptures fall outside on one side or the other.
_SKIN_SAT_MEAN = (55.0, 150.0)
_SKIN_SAT_SPREAD = (15.0, 46.0)


def _colour_cue(image: RGBImage, box: Box) -> float:
    top, right, bottom, left = _ring(image.shape, box, 0.8)
    face = image[top:bottom, left:right]
    if face.size == 0:
        return 0.0
    saturation = cv2.cvtColor(face, cv2.COLOR_RGB2HSV)[..., 1].astype(np.float64)
    mean, spread = float(saturation.mean()), float(saturation.std())
    outside = max(
        (_SKIN_SAT_MEAN[0] - mean) / 20.0,
        (mean - _SKIN_SAT_MEAN[1]) / 20.0,
        (spread - _SKIN_SAT_SPREAD[1]) / 10.0,
    )
    return float(np.clip(outside, 0.0, 1.0))
