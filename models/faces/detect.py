"""Face detection with dlib's HOG detector (through face_recognition), sized for speed.

Large frames are detected on a downscaled copy and the boxes scaled back, so a 1080p frame costs about
what a 640 px one does; small images are upsampled so small faces are still found. When HOG finds
nothing, a fallback chain (more upsampling, then dlib's CNN detector on a small copy) recovers the
hard cases without making every frame pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.faces._fr import face_recognition
from models.faces.decode import RGBImage
from models.settings import EngineSettings


@dataclass(frozen=True)
class Box:
    """A face box in original-image pixels (face_recognition's css order)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    def as_css(self) -> tuple[int, int, int, int]:
        return (self.top, self.right, self.bottom, self.left)


def detect_faces(image: RGBImage, settings: EngineSettings, *, thorough: bool = True) -> list[Box]:
    """Find faces, largest first.

    Args:
        image: RGB uint8 array.
        settings: `detect_max_side_px`, `small_image_upsample_below_px`, fallback settings.
        thorough: run the fallback chain when HOG finds nothing. Right for one photo (enrollment, a
            comparison); wrong for every frame of a video burst, where an empty frame is normal and the
            CNN would cost several times the frame.
    Returns:
        Boxes in `image` coordinates, sorted by area, largest first; empty when no face is found.
    """
    height, width = image.shape[:2]
    longest = max(height, width)
    scale = min(1.0, settings.detect_max_side_px / longest)
    # Upsampling is decided on the copy HOG sees: its smallest window is 80 px, one upsample halves that.
    upsample = 1 if longest * scale < settings.small_image_upsample_below_px else 0
    boxes = _run(image, scale, upsample, "hog")
    if not boxes and thorough and settings.detect_fallback_cnn:
        boxes = _run(image, scale, upsample + 1, "hog")
        if not boxes:
            cnn_scale = min(1.0, settings.cnn_max_side_px / longest)
            boxes = _run(image, cnn_scale, 1 if longest * cnn_scale < 300 else 0, "cnn")
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def _run(image: RGBImage, scale: float, upsample: int, model: str) -> list[Box]:
    small = image if scale >= 1.0 else _resize(image, scale)
    found = face_recognition().face_locations(small, number_of_times_to_upsample=upsample, model=model)
    height, width = image.shape[:2]
    boxes = []
    for top, right, bottom, left in found:
        boxes.append(
            Box(
                top=max(int(round(top / scale)), -height),
                right=int(round(right / scale)),
                bottom=int(round(bottom / scale)),
                left=int(round(left / scale)),
            )
        )
    return boxes


def _resize(image: RGBImage, scale: float) -> RGBImage:
    height, width = image.shape[:2]
    size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
