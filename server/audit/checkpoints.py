"""Signed checkpoints of the audit chain's head, kept outside the database, in one or two places.

The keyed chain stops anyone from editing a record and recomputing the hashes after it, but deleting the
newest records leaves a shorter chain that is still whole. So the scheduler (and `bedcheck audit
checkpoint`, and every server shutdown) appends the head's sequence number and hash with the time, signed with
the audit key, to a file beside the database (`ServerSettings.audit_checkpoint_path`), and to the same file in
a mirror directory on every write (`audit_checkpoint_mirror`: another disk, or a share the bureau keeps), so
someone who can write the server's disk cannot roll both back.

`bedcheck audit verify` reads both (`load_checkpoints`) and fails on:
- a chain that ends before a checkpoint (truncated) or whose record at a checkpoint has another hash;
- a checkpoint file that is missing (while the chain has records), unreadable, or has lines that are not
  signed checkpoints; a mirror that is missing or lacks checkpoints the main file has (and the reverse);
- checkpoints older than expected: records older than `audit_checkpoint_max_age_s` that no checkpoint covers
  (checkpointing stopped, or the file was rolled back to an older copy).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, func, select

from server.audit import service as audit
from server.audit.tables import AuditRecord
from server.db import utcnow


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    created_at: str

    def signature(self, key: bytes) -> str:
        message = f"{self.seq}|{self.head_hash}|{self.created_at}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass
class LoadedCheckpoints:
    checkpoints: list[Checkpoint] = field(default_factory=list)  # both places together, each once, by seq
    problems: list[str] = field(default_factory=list)  # each as "中文 / English"


def read_checkpoints(path: Path, key: bytes) -> tuple[list[Checkpoint], list[str]]:
    """The file's checkpoints with valid signatures, and a problem for each line that is not one.

    A missing file is no checkpoints; a file that cannot be read raises OSError or UnicodeDecodeError."""
    if not path.exists():
        return [], []
    found: list[Checkpoint] = []
    problems: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            checkpoint = Checkpoint(int(raw["seq"]), str(raw["head_hash"]), str(raw["created_at"]))
            signature = str(raw["signature"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"检查点文件第 {number} 行不是检查点 / checkpoint file line {number} is not a checkpoint")
            continue
        if not hmac.compare_digest(checkpoint.signature(key), signature):
            problems.append(f"检查点文件第 {number} 行签名无效 / checkpoint file line {number} has a bad signature "
                            "(edited, or another audit key)")
            continue
        found.append(checkpoint)
    return found, problems


def _read_one(path: Path, key: bytes, what: str, loaded: LoadedCheckpoints) -> list[Checkpoint] | None:
    try:
        if path.exists() and not path.is_file():
            raise IsADirectoryError(path)
        found, problems = read_checkpoints(path, key)
    except (OSError, UnicodeDecodeError) as e:
        loaded.problems.append(f"{what}无法读取 / the {what_en(what)} cannot be read: {path} ({e.__class__.__name__})")
        return None
    loaded.problems += [f"{path}: {p}" for p in problems]
    if not path.exists():
        return None
    return found


def what_en(what: str) -> str:
    return {"检查点文件": "checkpoint file", "检查点镜像": "checkpoint mirror"}.get(what, what)


def load_checkpoints(db: Session, path: Path, mirror: Path | None, *, max_age_s: float,
                     now: datetime | None = None) -> LoadedCheckpoints:
    """Both places' checkpoints and every problem with them, for `audit verify` (bilingual messages)."""
    key = audit.key_for(db)
    loaded = LoadedCheckpoints()
    seq, _ = audit.head(db)
    main = _read_one(path, key, "检查点文件", loaded)
    if main is None and path.exists() is False and seq > 0:
        loaded.problems.append(f"检查点文件缺失 / the checkpoint file is missing: {path} (the chain has {seq} "
                               "records; a truncated tail cannot be ruled out)")
    copies = [main or []]
    if mirror is not None:
        mirrored = _read_one(mirror, key, "检查点镜像", loaded)
        if mirrored is None and not mirror.exists() and seq > 0:
            loaded.problems.append(f"检查点镜像缺失 / the checkpoint mirror is missing: {mirror}")
        copies.append(mirrored or [])
        if main is not None and mirrored is not None:
            loaded.problems += _differences(main, mirrored, path, mirror)
    unique = {(c.seq, c.head_hash, c.created_at): c for copy in copies for c in copy}
    loaded.checkpoints = sorted(unique.values(), key=lambda c: (c.seq, c.created_at))
    if seq > 0 and (main is not None or mirror is not None):
        loaded.problems += _stale(db, loaded.checkpoints, max_age_s, now or utcnow())
    return loaded


def _differences(main: list[Checkpoint], mirrored: list[Checkpoint], path: Path, mirror: Path) -> list[str]:
    """Checkpoints one place has and the other lacks, from the mirror's first one on (it may start later)."""
    if not mirrored:
        return [f"检查点镜像为空 / the checkpoint mirror is empty: {mirror}"] if main else []
    since = mirrored[0].seq
    problems = []
    lacking_main = sorted({c.seq for c in mirrored} - {c.seq for c in main})
    lacking_mirror = sorted({c.seq for c in main if c.seq >= since} - {c.seq for c in mirrored})
    if lacking_main:
        problems.append(f"检查点文件缺少镜像中的检查点 / {path} lacks the mirror's checkpoints at seq "
                        f"{', '.join(map(str, lacking_main[:10]))} (rolled back or lines deleted)")
    if lacking_mirror:
        problems.append(f"检查点镜像缺少检查点 / {mirror} lacks checkpoints at seq "
                        f"{', '.join(map(str, lacking_mirror[:10]))}")
    return problems


def _stale(db: Session, checkpoints: list[Checkpoint], max_age_s: float, now: datetime) -> list[str]:
    covered = max((c.seq for c in checkpoints), default=0)
    oldest = db.exec(select(func.min(AuditRecord.created_at)).where(col(AuditRecord.seq) > covered)).one()
    if oldest is None:
        return []
    if oldest.tzinfo is None:  # SQLite hands back naive UTC
        oldest = oldest.replace(tzinfo=now.tzinfo)
    if now - oldest <= timedelta(seconds=max_age_s):
        return []
    return [f"检查点过旧 / the newest checkpoint is older than expected: records after seq {covered}, the first "
            f"written {oldest.isoformat(timespec='seconds')}, are covered by no checkpoint (more than "
            f"{max_age_s:g} s; checkpoints stopped, or the file was rolled back; `bedcheck audit checkpoint` "
            "writes one)"]


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def write_checkpoint(db: Session, path: Path, mirror: Path | None = None) -> Checkpoint | None:
    """Appends a signed checkpoint of the chain's head to the file and its mirror, unless the newest has it."""
    key = audit.key_for(db)
    seq, head_hash = audit.head(db)
    if seq == 0:
        return None
    existing, _ = read_checkpoints(path, key)
    if existing and existing[-1].seq == seq and existing[-1].head_hash == head_hash:
        return None
    checkpoint = Checkpoint(seq, head_hash, utcnow().isoformat(timespec="seconds"))
    line = json.dumps({**asdict(checkpoint), "signature": checkpoint.signature(key)}) + "\n"
    _append(path, line)
    if mirror is not None:
        _append(mirror, line)
    return checkpoint
