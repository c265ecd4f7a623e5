"""The SFace engine's ONNX files: read from the installed wheel, refused when missing or altered."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from models.errors import ModelFileAltered, ModelFileMissing
from models.faces.model_files import SFACE, YUNET, read_verified


def test_the_installed_model_files_pass_their_sha256() -> None:
    for model in (YUNET, SFACE):
        data = read_verified(model)
        assert len(data) == model.size_bytes and hashlib.sha256(data).hexdigest() == model.sha256


def _fake_carrier(tmp_path: Path, monkeypatch, name: str, content: bytes | None) -> str:
    package = tmp_path / "fake_carrier"
    (package / "models").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if content is not None:
        (package / "models" / name).write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_carrier", None)
    return "fake_carrier"


def test_an_altered_model_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    original = bytearray(read_verified(YUNET))
    original[len(original) // 2] ^= 0x01  # one bit flipped
    package = _fake_carrier(tmp_path, monkeypatch, YUNET.name, bytes(original))
    with pytest.raises(ModelFileAltered) as caught:
        read_verified(YUNET, package)
    assert caught.value.details["model"] == YUNET.name and caught.value.http_status == 503


def test_a_missing_model_file_or_carrier_is_a_typed_error(tmp_path: Path, monkeypatch) -> None:
    package = _fake_carrier(tmp_path, monkeypatch, SFACE.name, None)
    with pytest.raises(ModelFileMissing):
        read_verified(SFACE, package)
    with pytest.raises(ModelFileMissing):
        read_verified(SFACE, "no_such_carrier_package")
