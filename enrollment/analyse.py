"""One photo through the enrollment gates: bytes -> sha256, encoding and reviewer thumbnail, or a reason code.

Runs in worker processes (bulk enrollment) and in the server (admission desk). Pure: no database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import BedcheckError, ImageTooLarge
from models.faces import crop_to_jpeg
from models.faces.decode import decode_image, fit_side
from models.faces.engine import FaceEngine
from models.settings import EngineSettings

THUMBNAIL_PX = 96
THUMBNAIL_QUALITY = 80


@dataclass(frozen=True)
class PhotoAnalysis:
    """An accepted photo has an encoding; a rejected one a reason `code` (a `ReasonCode` value)."""

    sha256: str
    encoding: np.ndarray | None = None
    thumbnail_jpeg: bytes | None = None
    chip_jpeg: bytes | None = None  # the 256 px face crop, kept to re-embed with another engine
    engine_version: str = ""
    code: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.encoding is not None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def analyse_photo(data: bytes, engine: FaceEngine, *, sha256: str | None = None) -> PhotoAnalysis:
    """Decode, apply the enrollment gates (exactly one face, size, edge, blur, light, pose) and encode."""
    digest = sha256 or sha256_of(data)
    try:
        image = decode_image(data, engine.settings)
        enrolled = engine.enroll_face(image)
    except BedcheckError as e:
        # Gate details are measurements (sizes, sharpness), never pixels or encodings.
        return PhotoAnalysis(digest, code=e.code.value, message=e.message, details=_plain(e.details))
    return PhotoAnalysis(digest, encoding=np.asarray(enrolled.encoding, dtype=np.float64),
                         thumbnail_jpeg=thumbnail(enrolled.crop_rgb), chip_jpeg=crop_to_jpeg(enrolled.crop_rgb),
                         engine_version=engine.tag)


def thumbnail(crop_rgb: np.ndarray, max_side_px: int = THUMBNAIL_PX) -> bytes:
    """A small JPEG of the face crop for reviewers (longer side `max_side_px`), no metadata."""
    return crop_to_jpeg(fit_side(crop_rgb, max_side_px), quality=THUMBNAIL_QUALITY)


def _plain(details: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool) or v is None else str(v)) for k, v in details.items()}


# --- worker-process side ------------------------------------------------------------------------------
_worker_engine: FaceEngine | None = None


def init_worker(settings_json: str) -> None:
    """ProcessPoolExecutor initializer: one engine per worker process, built from the parent's settings."""
    global _worker_engine
    _worker_engine = FaceEngine(EngineSettings.model_validate_json(settings_json))


def analyse_file(path: str) -> PhotoAnalysis:
    """Worker task: read and analyse one photo file (the size cap is checked before reading)."""
    engine = _worker_engine or FaceEngine()
    file = Path(path)
    size = file.stat().st_size
    if size > engine.settings.max_image_bytes:
        error = ImageTooLarge(size_bytes=size, max_bytes=engine.settings.max_image_bytes)
        return PhotoAnalysis("", code=error.code.value, message=error.message, details=error.details)
    return analyse_photo(file.read_bytes(), engine)
