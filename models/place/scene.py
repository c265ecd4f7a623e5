"""The scene key frame: the bed's surroundings at the moment of a face capture, with every face blurred.

It is evidence about the place, not the person: faces (with a margin for hair and ears) are pixelated and
smoothed before the frame leaves the device, and the frame is kept small. The server stores it under the
same retention rules as the face crop.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from numpy.typing import NDArray

from models.faces import crop_to_jpeg
from models.faces.decode import fit_side
from models.faces.detect import Box

RGBImage = NDArray[np.uint8]

SCENE_MAX_SIDE_PX = 480
SCENE_JPEG_QUALITY = 80
# Of the face box, added on every side: a face box covers brows to chin; hair, ears and the jaw line
# identify a person too.
FACE_MARGIN = 0.45
# The blurred face keeps this many blocks across: no identity survives, and the block pattern changes
# with every capture, so it adds no stable features to the place match.
MOSAIC_BLOCKS = 4
_SMOOTH_STEP = 4


def blur_faces(image: RGBImage, boxes: Iterable[Box], margin: float = FACE_MARGIN) -> RGBImage:
    """A copy of `image` whose face regions are pixelated to a few blocks and smoothed."""
    out = np.array(image, dtype=np.uint8, copy=True)
    height, width = out.shape[:2]
    for box in boxes:
        dx, dy = int(box.width * margin), int(box.height * margin)
        top, bottom = max(box.top - dy, 0), min(box.bottom + dy, height)
        left, right = max(box.left - dx, 0), min(box.right + dx, width)
        if bottom - top < 2 or right - left < 2:
            continue
        region = out[top:bottom, left:right]
        small = cv2.resize(region, (MOSAIC_BLOCKS, MOSAIC_BLOCKS), interpolation=cv2.INTER_AREA)
        out[top:bottom, left:right] = _smoothed_mosaic(small, right - left, bottom - top)
    return out


def _smoothed_mosaic(blocks: np.ndarray, width: int, height: int) -> RGBImage:
    """The mosaic blown up to width x height and smoothed (sigma a twelfth of the width).

    Smoothed at a quarter of the size, then scaled up: the mosaic has no detail a full-size blur would keep,
    and the full-size blur of a face region cost 80-90 ms of a 640x480 challenge check; on a rendered room the
    two differ by at most 3 grey levels.
    """
    step = _SMOOTH_STEP
    quarter = cv2.resize(blocks, (-(-width // step), -(-height // step)), interpolation=cv2.INTER_NEAREST)
    smooth = cv2.GaussianBlur(quarter, (0, 0), sigmaX=max(3.0, width / 12) / step)
    return np.asarray(cv2.resize(smooth, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


def scene_jpeg(image: RGBImage, face_boxes: Iterable[Box], *, max_side_px: int = SCENE_MAX_SIDE_PX,
               quality: int = SCENE_JPEG_QUALITY) -> bytes:
    """The scene key frame to upload: faces blurred at full resolution, then scaled down, as JPEG.

    Args:
        image: the RGB frame the camera saw.
        face_boxes: every face found in it (blurred before anything else is done with the frame).
        max_side_px: longer side of the uploaded frame.
        quality: JPEG quality.
    Returns:
        JPEG bytes without metadata.
    """
    return crop_to_jpeg(fit_side(blur_faces(image, face_boxes), max_side_px), quality=quality)
