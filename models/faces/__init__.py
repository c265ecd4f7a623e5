"""The face engine: decode, detect, quality gates, encode, liveness and matching.

`face_recognition` (dlib) is imported lazily on first use, never at import of this package.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# Stored with every check result and enrolled embedding, so evidence can be judged again later.
ENGINE_VERSION = "bedcheck-face/1 dlib-resnet128 hog+cnn-fallback"


def crop_to_jpeg(rgb: NDArray[np.uint8], quality: int = 88) -> bytes:
    """Encode an RGB crop as JPEG (evidence and thumbnails), without EXIF or other metadata."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


__all__ = ["ENGINE_VERSION", "crop_to_jpeg"]
