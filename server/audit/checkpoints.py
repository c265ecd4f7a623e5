"""Signed checkpoints of the audit chain's head, kept outside the database.

The keyed chain stops anyone from editing a record and recomputing the hashes after it, but deleting the
newest records leaves a shorter chain that is still whole. So the scheduler (and `bedcheck audit
checkpoint`, and every server shutdown) appends the head's sequence number and hash with the time, signed with
the audit key, to a file beside the database (`ServerSettings.audit_checkpoint_path`; copy it off the machine,
or to the bureau, for more). `bedcheck audit verify` then names a chain that ends before a checkpoint
(truncated) or whose record at a checkpoint has another hash (re-chained).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlmodel import Session

from server.audit import service as audit
from server.db import utcnow


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    created_at: str

    def signature(self, key: bytes) -> str:
        message = f"{self.seq}|{self.head_hash}|{self.created_at}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()


def read_checkpoints(path: Path, key: bytes) -> tuple[list[Checkpoint], list[str]]:
    """The file's checkpoints with valid signatures, and a problem for each line that is not one."""
    if not path.exists():
        return [], []
    found: list[Checkpoint] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            checkpoint = Checkpoint(int(raw["seq"]), str(raw["head_hash"]), str(raw["created_at"]))
            signature = str(raw["signature"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"checkpoint file line {number} is not a checkpoint")
            continue
        if not hmac.compare_digest(checkpoint.signature(key), signature):
            problems.append(f"checkpoint file line {number} has a bad signature (edited, or another audit key)")
            continue
        found.append(checkpoint)
    return found, problems


def write_checkpoint(db: Session, path: Path) -> Checkpoint | None:
    """Appends a signed checkpoint of the chain's head, unless the newest one already has it."""
    key = audit.key_for(db)
    seq, head_hash = audit.head(db)
    if seq == 0:
        return None
    existing, _ = read_checkpoints(path, key)
    if existing and existing[-1].seq == seq and existing[-1].head_hash == head_hash:
        return None
    checkpoint = Checkpoint(seq, head_hash, utcnow().isoformat(timespec="seconds"))
    line = json.dumps({**asdict(checkpoint), "signature": checkpoint.signature(key)}) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return checkpoint
