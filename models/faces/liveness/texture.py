"""The 3-D test's second witness: the nose and the face plane followed by their texture, not by the shape model.

A landmark model (dlib's predictor before, Face Mesh now) fits a whole learned face shape to the image. Shown a
print turned hard or bent round a cup, it can lay the shape of a turned head over the foreshortened photo, nose and
all, and the landmarks then show the parallax a head would. The texture cannot: a painted nose tip moves with the
sheet. Here the eye corners, mouth corners and nose tip of the neutral frame are followed frame by frame with
pyramidal Lucas-Kanade optical flow (each step seeded with the landmarks' motion) and the nose depth is measured
again on the followed points. On a print the texture pulls the nose back onto the plane.

Only a small window round the face is handed to the flow, so following a burst costs a few milliseconds. A step
whose points do not come back to where they started (forward-backward check) ends the chain: the frames beyond
it are not witnessed, and what is not witnessed decides nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from models.faces.decode import RGBImage
from models.faces.liveness.geometry import FACE_PLANE, NOSE_TIP, Points, inter_ocular, nose_depth

FOLLOWED = np.array([*FACE_PLANE, NOSE_TIP])
# A point is still the same point when the flow brings it back within this much of where it started.
_ROUND_TRIP = 0.03  # inter-ocular distances
_MARGIN = 0.6       # window round the followed points, inter-ocular distances
_LK_WINDOW = (21, 21)
_LK_LEVELS = 3
_LK_STOP = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


def followed_points(images: Sequence[RGBImage], points_by_index: Mapping[int, Points], reference: int,
                    needed: Collection[int]) -> dict[int, NDArray[np.float64]]:
    """The followed points (7, 2) in the landmarked frames the chain reaches from `reference`, in burst order both
    ways, as far as the farthest frame of `needed` on each side."""
    unit = inter_ocular(points_by_index[reference])
    followed = {reference: points_by_index[reference][FOLLOWED].astype(np.float64)}
    order = sorted(points_by_index)
    position = {index: at for at, index in enumerate(order)}
    start = position[reference]
    positions = [position[i] for i in needed if i in position]
    for step, last in ((1, max(positions, default=start)), (-1, min(positions, default=start))):
        at = start
        while 0 <= at + step < len(order) and (at - last) * step < 0:
            here, there = order[at], order[at + step]
            moved = _follow(images[here], images[there], followed[here],
                            points_by_index[there][FOLLOWED] - points_by_index[here][FOLLOWED], unit)
            if moved is None:
                break
            followed[there] = moved
            at += step
    return followed


def texture_depth(images: Sequence[RGBImage], points_by_index: Mapping[int, Points], reference: int,
                  turns: Mapping[int, tuple[float, float]], min_frames: int) -> float | None:
    """Median nose depth on the followed points over the frames of `turns` (index -> (yaw, pitch) change from
    the reference) the chain reaches; None when it reaches fewer than `min_frames` of them."""
    followed = followed_points(images, points_by_index, reference, turns.keys())
    depths = []
    for index, (yaw, pitch) in turns.items():
        if index not in followed:
            continue
        reference_points = points_by_index[reference].copy()
        frame_points = points_by_index[index].copy()
        reference_points[FOLLOWED] = followed[reference]
        frame_points[FOLLOWED] = followed[index]
        depths.append(nose_depth(reference_points, frame_points, yaw, pitch))
    return float(np.median(depths)) if len(depths) >= min_frames else None


def _follow(image: RGBImage, next_image: RGBImage, points: NDArray[np.float64], landmark_motion: NDArray[np.float64],
            unit: float) -> NDArray[np.float64] | None:
    """The points one step on, or None when the flow does not bring them back to where they started.

    Seeded first with how the landmarks moved as a whole (their median shift: one landmark that jumps, as dlib's
    mouth corners do from frame to frame, must not throw its point off), then, when that fails, with each
    landmark's own motion (a large step, where the sheet turned in between, needs a seed close to the point).
    """
    guesses = (points + np.median(landmark_motion, axis=0), points + landmark_motion)
    both = np.vstack([points, *guesses])
    height, width = image.shape[:2]
    left, top = (np.floor(both.min(axis=0) - _MARGIN * unit)).astype(int)
    right, bottom = (np.ceil(both.max(axis=0) + _MARGIN * unit)).astype(int)
    left, top = max(0, left), max(0, top)
    right, bottom = min(width, right), min(height, bottom)
    if right - left < 8 or bottom - top < 8 or next_image.shape[:2] != image.shape[:2]:
        return None
    offset = np.array([left, top], dtype=np.float64)
    grey = cv2.cvtColor(np.ascontiguousarray(image[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    next_grey = cv2.cvtColor(np.ascontiguousarray(next_image[top:bottom, left:right]), cv2.COLOR_RGB2GRAY)
    start = (points - offset).astype(np.float32).reshape(-1, 1, 2)
    for guess in guesses:
        forward, ok_forward, _ = _flow(grey, next_grey, start, (guess - offset).astype(np.float32).reshape(-1, 1, 2))
        if forward is None:
            continue
        back, ok_back, _ = _flow(next_grey, grey, forward, start)
        if back is None:
            continue
        round_trip = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
        if ok_forward.all() and ok_back.all() and (round_trip < _ROUND_TRIP * unit).all():
            return np.asarray(forward.reshape(-1, 2), dtype=np.float64) + offset
    return None


def _flow(grey: np.ndarray, next_grey: np.ndarray, points: np.ndarray, seed: np.ndarray) -> tuple[Any, Any, Any]:
    return cv2.calcOpticalFlowPyrLK(grey, next_grey, points, seed.copy(), winSize=_LK_WINDOW, maxLevel=_LK_LEVELS,
                                    criteria=_LK_STOP, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
