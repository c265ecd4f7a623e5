"""The device credential, stored next to the outbox, readable by this user only (0600)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ValidationError


class NotPaired(Exception):
    """No usable credential: run `bedcheck-edge pair` first."""


class Credentials(BaseModel):
    server_url: str
    device_id: int
    token: str
    hospital_id: int
    ward_id: int


def save_credentials(path: Path, credentials: Credentials) -> None:
    """Writes atomically with mode 0600: a crash leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(credentials.model_dump_json())
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temp, 0o600)  # O_CREAT's mode is filtered by the umask; be explicit
    os.replace(temp, path)


def load_credentials(path: Path) -> Credentials:
    """The saved credential; refuses a file others can read (a token is as good as the device)."""
    if not path.is_file():
        raise NotPaired(f"{path}: no credential, run `bedcheck-edge pair --server URL --code CODE` first")
    if path.stat().st_mode & 0o077:
        raise NotPaired(f"{path}: readable by other users; fix with `chmod 600 {path}` or pair again")
    try:
        return Credentials.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        raise NotPaired(f"{path}: unreadable credential ({e.error_count()} errors); pair again") from e
