"""Liveness of a capture burst: blinks across frames, plus a passive check of single frames.

Blink: the eye aspect ratio (EAR, Soukupová and Čech 2016) from the 68-point landmarks drops when the eyes
close; an open -> closed -> open sequence in a burst is a blink, which a photo cannot do.

Passive (one frame), for printed photos and screens held up to the camera. Cues, each in [0, 1] where 1
looks like a presentation attack:
- frame: a presented photo or screen has its own straight border (paper edge, bezel) close around the
  face; long straight edges parallel to the image axes in the ring around the face are counted.
- moire: a screen re-photographed shows periodic interference, i.e. isolated peaks in the high
  frequencies of the face's spectrum, which skin does not have.
- colour: paper washes out skin colour (low saturation) and a screen adds a cast and glare (saturation
  spread far beyond skin's); the face's saturation mean and spread are compared with the range of live
  skin under room light.
- flatness: a print or screen compresses the face's dynamic range and loses fine texture.
The passive score is 1 minus a weighted combination. It is a heuristic, not a trained detector: it catches
a photo or tablet held in front of the camera, not a well-cropped high-resolution replay. That is why the
engine reports scores and reasons, and why blinks are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def eye_aspect_ratio(landmarks: Landmarks) -> float:
    """Mean EAR of both eyes: (|p2-p6| + |p3-p5|) / (2 |p1-p4|) on the 6 points of each eye."""
    ratios = []
    for key in ("left_eye", "right_eye"):
        p = np.asarray(landmarks[key], dtype=np.float64)
        width = np.linalg.norm(p[0] - p[3])
        if width == 0:
            continue
        ratios.append((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2.0 * width))
    return float(np.mean(ratios)) if ratios else 0.0


def detect_blink(ears: list[float], settings: EngineSettings) -> bool:
    """An open -> closed -> open sequence, with hysteresis so landmark jitter is not a blink."""
    state = "start"
    for ear in ears:
        if state == "start" and ear >= settings.blink_ear_open:
            state = "open"
        elif state == "open" and ear <= settings.blink_ear_closed:
            state = "closed"
        elif state == "closed" and ear >= settings.blink_ear_open:
            return True
    return False


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
    """1 = live. The frame cue dominates: it is the most specific; texture cues only tip a weak frame."""
    texture = 0.45 * cues["frame"] + 0.35 * cues["moire"] + 0.2 * cues["flatness"]
    attack = max(cues.get("colour", 0.0), texture)
    return float(np.clip(1.0 - attack, 0.0, 1.0))


def assess_liveness(
    ears: list[float], frame_cues: list[dict[str, float]], settings: EngineSettings
) -> LivenessResult:
    """Combine the blink test over the burst and the passive cues of its frames."""
    blink = detect_blink(ears, settings)
    if frame_cues:
        cues = {k: float(np.median([c[k] for c in frame_cues])) for k in frame_cues[0]}
        passive = passive_score(cues)
    else:
        cues, passive = {}, 0.0
    reasons: list[str] = []
    if passive < settings.passive_live_threshold:
        reasons.extend(f"{name}_cue" for name, value in cues.items() if value >= 0.5)
        reasons.append("passive_check_failed")
    if not blink:
        reasons.append("no_blink")
    live = passive >= settings.passive_live_threshold and (blink or not settings.require_blink)
    score = min(1.0, passive + (0.25 if blink else 0.0)) if live else min(passive, 0.49)
    return LivenessResult(live, round(score, 3), blink, round(passive, 3), tuple(reasons), cues)


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
