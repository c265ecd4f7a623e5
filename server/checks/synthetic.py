"""Synthetic evidence for the demo and the test suite: a small PNG that carries its embedding, labelled.

A fresh machine has no face photos, yet the simulated county must send face results with their crops, and
the server must decide them on the crop, not on the device's word. A synthetic crop is a grey PNG whose
`bedcheck-synthetic-embedding` text chunk holds the embedding; the server reads it instead of running the
face engine, only when `ServerSettings.environment` is demo or test. In production the same file is just an
image without a face: the result is unrecognised and flagged (server/checks/evidence.py).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, PngImagePlugin

MARK = "bedcheck-synthetic-embedding"
SIDE_PX = 32


def synthetic_crop(embedding: np.ndarray | list[float]) -> bytes:
    """A PNG standing in for a face crop of this embedding (demo and tests only)."""
    vector = np.asarray(embedding, dtype="<f4")
    info = PngImagePlugin.PngInfo()
    info.add_text(MARK, base64.b64encode(vector.tobytes()).decode("ascii"))
    # The pixels vary with the embedding, so two synthetic captures are two images (replay checks hash them).
    shade = int(np.abs(vector[:4]).sum() * 1000) % 200 + 28
    buffer = io.BytesIO()
    Image.new("L", (SIDE_PX, SIDE_PX), shade).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_synthetic_embedding(data: bytes) -> np.ndarray | None:
    """The embedding a synthetic crop carries, or None for any other image."""
    if not data.startswith(b"\x89PNG"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = image.info.get(MARK)
            if not isinstance(text, str):
                return None
            vector = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4")
    except (OSError, ValueError):
        return None
    return vector.astype(np.float64) if vector.size == 128 else None
