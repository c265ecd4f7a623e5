"""A scene against a bed's references: feature matches, then a homography fitted with RANSAC.

The place score is the number of matches the homography explains (inliers). The same bed seen again,
under other light, from a slightly moved tablet or with a person in front, keeps dozens to hundreds of
inliers on the walls, headboard and equipment; another room keeps a handful of chance matches.
A homography that folds, mirrors or scales the frame wildly is not a view of the same wall and scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.place.features import SceneFeatures

RATIO = 0.8            # Lowe's ratio test on the two nearest descriptors
RANSAC_PX = 5.0        # RHO's reprojection tolerance, in pixels of the 480 px feature frame
MIN_MATCHES = 8        # fewer putative matches cannot support a homography worth scoring
MAX_SCALE = 3.0        # the homography's area change, either way, beyond which it is not the same view


@dataclass(frozen=True)
class PlaceMatch:
    score: int               # inliers of the best reference
    reference_index: int     # which reference, -1 when there was none to match
    matches: int             # putative matches (after the ratio test) with that reference


def match_pair(scene: SceneFeatures, reference: SceneFeatures) -> tuple[int, int]:
    """(inliers, putative matches) of one scene against one reference."""
    if len(scene) < MIN_MATCHES or len(reference) < MIN_MATCHES:
        return 0, 0
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(scene.descriptors, reference.descriptors, k=2)
    # Best first: RHO (PROSAC) samples from the front of the list, so it settles fast on a true view and
    # gives up fast on another room, where plain RANSAC runs out its iterations.
    good = sorted((p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance),
                  key=lambda m: m.distance)
    if len(good) < MIN_MATCHES:
        return 0, len(good)
    src = scene.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    dst = reference.points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    homography, mask = cv2.findHomography(src, dst, cv2.RHO, RANSAC_PX, maxIters=2000, confidence=0.995)
    if homography is None or mask is None or not _plausible(homography):
        return 0, len(good)
    return int(mask.sum()), len(good)


def match_scene(scene: SceneFeatures, references: Sequence[SceneFeatures], *, enough: int | None = None) -> PlaceMatch:
    """The best of `references` for `scene`.

    Args:
        scene: features of the uploaded scene frame.
        references: features of the bed's (or ward's) reference frames.
        enough: stop at the first reference scoring at least this (the usual case costs one match).
    """
    best = PlaceMatch(0, -1, 0)
    for index, reference in enumerate(references):
        inliers, matches = match_pair(scene, reference)
        if inliers > best.score or best.reference_index < 0:
            best = PlaceMatch(inliers, index, matches)
        if enough is not None and best.score >= enough:
            break
    return best


def _plausible(homography: np.ndarray) -> bool:
    """Not folded or mirrored (positive determinant of the affine part) and not wildly scaled."""
    det = float(np.linalg.det(homography[:2, :2]))
    if not np.isfinite(det) or det <= 0:
        return False
    return 1.0 / MAX_SCALE <= det <= MAX_SCALE
