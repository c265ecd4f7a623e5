from __future__ import annotations

from pathlib import Path

import pytest

from models.faces.decode import load_image_file
from models.faces.engine import FaceEngine
from models.settings import EngineSettings


@pytest.fixture(scope="session")
def settings() -> EngineSettings:
    return EngineSettings()


@pytest.fixture(scope="session")
def engine(settings: EngineSettings) -> FaceEngine:
    return FaceEngine(settings)


@pytest.fixture(scope="session")
def people_encodings(faces_dir: Path, engine: FaceEngine) -> dict[str, list]:
    """Largest-face encoding of every people/ image, computed once for the session."""
    encodings: dict[str, list] = {}
    for person in sorted(p for p in (faces_dir / "people").iterdir() if p.is_dir()):
        for image in sorted(person.glob("*.jpg")):
            encoding = engine.encode_largest(load_image_file(image, engine.settings))
            assert encoding is not None, f"no face in {image.name} of {person.name}"
            encodings.setdefault(person.name, []).append(encoding)
    return encodings
