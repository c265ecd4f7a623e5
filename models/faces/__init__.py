"""The face engine: decode, detect, quality gates, encode, liveness and matching.

`face_recognition` (dlib) and the SFace models are loaded lazily on first use, never at import of this package.
Each engine's tag, stored with every embedding, is in models/faces/engines.py.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def crop_to_jpeg(rgb: NDArray[np.uint8], quality: int = 88) -> bytes:
    """Encode an RGB crop as JPEG (evidence and thumbnails), without EXIF or other metadata."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


__all__ = ["crop_to_jpeg"]
