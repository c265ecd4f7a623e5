"""Image bytes -> RGB array, with limits checked before decoding and EXIF orientation applied.

`import face_recognition` sets PIL's `ImageFile.LOAD_TRUNCATED_IMAGES = True` for the whole process, after
which Pillow silently fills in a truncated JPEG. So truncation is detected from the file structure itself
(end-of-image marker, PNG IEND chunk, RIFF length), independent of that process-wide flag.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import (
    EmptyImage,
    ImageCorrupt,
    ImageTooLarge,
    ImageTooManyPixels,
    ImageTruncated,
    UnsupportedImageFormat,
)
from models.settings import EngineSettings

RGBImage = NDArray[np.uint8]
SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


def decode_image(data: bytes, settings: EngineSettings) -> RGBImage:
    """Decode JPEG, PNG or WebP bytes into a contiguous RGB uint8 array (height, width, 3).

    Args:
        data: the file's bytes.
        settings: limits (`max_image_bytes`, `max_image_pixels`).
    Returns:
        The image, EXIF orientation applied, alpha dropped.
    Raises:
        EmptyImage, ImageTooLarge, ImageTooManyPixels, UnsupportedImageFormat, ImageTruncated, ImageCorrupt.
    """
    check_image_header(data, settings)
    image = _open_header(data)
    try:
        with warnings.catch_warnings():
            # Our own pixel limit ran above; Pillow's bomb warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image) or image
            rgb = image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageCorrupt(format=image.format) from e
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def check_image_header(data: bytes, settings: EngineSettings) -> tuple[str, int, int]:
    """The checks of `decode_image` that need no decoding (size, format, pixel count, truncation).

    Returns (format, width, height). Cheap enough to run on every upload before the bytes are stored.
    """
    if not data:
        raise EmptyImage()
    if len(data) > settings.max_image_bytes:
        raise ImageTooLarge(size_bytes=len(data), max_bytes=settings.max_image_bytes)
    image = _open_header(data)
    width, height = image.size
    if width * height > settings.max_image_pixels:
        raise ImageTooManyPixels(width=width, height=height, max_pixels=settings.max_image_pixels)
    if _is_truncated(image.format or "", data):
        raise ImageTruncated(format=image.format)
    return image.format or "", width, height


def load_image_file(path: str | Path, settings: EngineSettings) -> RGBImage:
    """Read and decode an image file under the same limits as an upload."""
    path = Path(path)
    size = path.stat().st_size
    if size > settings.max_image_bytes:
        raise ImageTooLarge(size_bytes=size, max_bytes=settings.max_image_bytes)
    return decode_image(path.read_bytes(), settings)


def _open_header(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as e:
        raise UnsupportedImageFormat() from e
    except Image.DecompressionBombError as e:
        raise ImageTooManyPixels() from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageCorrupt() from e
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageFormat(format=image.format)
    return image


def _is_truncated(image_format: str, data: bytes) -> bool:
    if image_format == "JPEG":
        # Encoders may pad after the end-of-image marker, so look for it near the end, not at it.
        return b"\xff\xd9" not in data[-1024:]
    if image_format == "PNG":
        return b"IEND" not in data[-64:]
    if image_format == "WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        return len(data) < declared
    return False


def fit_side(image: NDArray[np.uint8], max_side_px: int) -> NDArray[np.uint8]:
    """`image` (colour or grey) scaled down so its longer side is at most `max_side_px`; never scaled up."""
    height, width = image.shape[:2]
    scale = max_side_px / max(height, width)
    if scale >= 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
