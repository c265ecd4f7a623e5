"""Suite-wide fixtures. Face images come from ../shared/faces (or BEDCHECK_FACES_DIR) and are never copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Settings built without an explicit environment (CLI code under test) take the test suite's: the placeholder
# secret instead of a key file written into the working directory. Tests of the default start say so.
os.environ.setdefault("BEDCHECK_ENVIRONMENT", "test")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FACES_DIR = REPO_ROOT.parent / "shared" / "faces"

pytest_plugins = [p for p in ("tests.fixtures.db", "tests.fixtures.live_server")
                  if (REPO_ROOT / (p.replace(".", "/") + ".py")).exists()]


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (a CI stop, a `kill`) unwinds the session as Ctrl-C does, so session fixtures stop what they
    # started (the PostgreSQL cluster, live servers) instead of leaving them running.
    from server import lifecycle

    lifecycle.stop_on_signals()


def faces_root() -> Path | None:
    """The real face images, or None on a machine that has none."""
    root = Path(os.environ.get("BEDCHECK_FACES_DIR", DEFAULT_FACES_DIR))
    return root if (root / "people").is_dir() else None


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    root = faces_root()
    if root is None:
        pytest.skip("real face images not found: set BEDCHECK_FACES_DIR or provide ../shared/faces")
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if faces_root() is not None:
        return
    skip = pytest.mark.skip(reason="real face images not found: set BEDCHECK_FACES_DIR or ../shared/faces")
    for item in items:
        if "faces" in item.keywords:
            item.add_marker(skip)
