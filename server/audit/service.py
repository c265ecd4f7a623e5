"""The audit trail: append-only, each record chained to the previous one by a keyed hash (HMAC-SHA256).

Editing a record breaks its own hash; deleting one breaks the next record's `prev_hash` and leaves a gap
in `seq`. The key (`ServerSettings.audit_key`, a file beside the database, never in it) means someone who
can write the database cannot recompute the chain after an edit; and signed checkpoints of the chain's
head, kept outside the database (server/audit/checkpoints.py), reveal a truncated tail. Records carry ids
and scores only, never face data, names or insurance numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import weakref
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from server.audit.tables import AuditRecord
from server.db import claim_write, utcnow

GENESIS = "0" * 64
_KEYS: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


def use_key(engine: Engine, key: bytes) -> None:
    """The audit key for records written through `engine` (create_app sets its settings' key)."""
    _KEYS[engine] = key


@cache
def default_key() -> bytes:
    """The key of engines nobody registered (CLI commands, jobs built from the environment): the one the
    environment's settings resolve to, the same file the server uses."""
    from server.settings import ServerSettings

    return ServerSettings().audit_secret


def key_for(db: Session) -> bytes:
    bind = db.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    found = _KEYS.get(engine) if isinstance(engine, Engine) else None
    return found if found is not None else default_key()


def _digest(record: AuditRecord, key: bytes) -> str:
    body = {
        "seq": record.seq,
        "created_at": record.created_at.isoformat(),
        "actor": record.actor,
        "action": record.action,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "data": record.data,
        "prev_hash": record.prev_hash,
    }
    return hmac.new(key, json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Entry:
    actor: str
    action: str
    object_type: str
    object_id: str | int
    data: dict[str, Any] | None = None


def record(db: Session, *, actor: str, action: str, object_type: str, object_id: str | int,
           data: dict[str, Any] | None = None) -> AuditRecord:
    """Appends one audit record; adds and flushes, the caller commits."""
    return record_many(db, [Entry(actor, action, object_type, object_id, data)])[0]


def record_many(db: Session, entries: list[Entry]) -> list[AuditRecord]:
    """Appends records in order, reading the chain's head once; adds and flushes, the caller commits."""
    if not entries:
        return []
    # The head is read under the write lock, so two writers never chain onto the same record.
    claim_write(db)
    if db.get_bind().dialect.name == "postgresql":
        # Serialise writers across processes so two records never share a prev_hash.
        db.execute(text("SELECT pg_advisory_xact_lock(724911)"))
    key = key_for(db)
    head = db.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    created_at = utcnow().replace(microsecond=0)
    written = []
    for entry in entries:
        seq += 1
        row = AuditRecord(seq=seq, created_at=created_at, actor=entry.actor, action=entry.action,
                          object_type=entry.object_type, object_id=str(entry.object_id),
                          data=json.loads(json.dumps(entry.data or {}, default=str)), prev_hash=prev_hash, hash="")
        row.hash = prev_hash = _digest(row, key)
        db.add(row)
        written.append(row)
    db.flush()
    return written


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    record_id: int | None
    problem: str


def verify(db: Session, checkpoints: list[Any] | None = None) -> tuple[int, list[ChainProblem]]:
    """Walks the chain and checks it against signed checkpoints; returns the number of records and every break.

    `checkpoints`: server/audit/checkpoints.Checkpoint objects (seq, head_hash, created_at), already checked
    for their signatures. A checkpoint beyond the chain's end names a truncated tail; one whose record now
    has another hash names a re-chained history.
    """
    key = key_for(db)
    problems: list[ChainProblem] = []
    expected_prev, expected_seq, count = GENESIS, 1, 0
    hashes: dict[int, tuple[int | None, str]] = {}
    wanted = {c.seq for c in checkpoints or []}
    for entry in db.exec(select(AuditRecord).order_by(col(AuditRecord.seq))):
        count += 1
        if entry.seq != expected_seq:
            problems.append(ChainProblem(expected_seq, None, f"records {expected_seq}..{entry.seq - 1} missing"))
        if entry.prev_hash != expected_prev:
            problems.append(ChainProblem(entry.seq, entry.id, "prev_hash does not match the previous record"))
        if _digest(entry, key) != entry.hash:
            problems.append(ChainProblem(entry.seq, entry.id, "record edited: hash does not match its content "
                                                              "(or it was re-chained without the audit key)"))
        if entry.seq in wanted:
            hashes[entry.seq] = (entry.id, entry.hash)
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    last_seq = expected_seq - 1
    beyond = [c for c in checkpoints or [] if c.seq > last_seq]
    if beyond:
        newest = max(beyond, key=lambda c: c.seq)
        problems.append(ChainProblem(last_seq + 1, None, f"tail truncated: records {last_seq + 1}..{newest.seq} "
                                     f"missing (the checkpoint of {newest.created_at} saw the chain at seq "
                                     f"{newest.seq})"))
    for checkpoint in sorted(checkpoints or [], key=lambda c: c.seq):
        if checkpoint.seq > last_seq:
            continue
        record_id, stored = hashes.get(checkpoint.seq, (None, ""))
        if stored != checkpoint.head_hash:
            problems.append(ChainProblem(checkpoint.seq, record_id, "history re-chained: this record's hash "
                                         f"differs from the checkpoint of {checkpoint.created_at}"))
    return count, problems


def head(db: Session) -> tuple[int, str]:
    """The chain's newest (seq, hash), (0, GENESIS) when empty."""
    row = db.exec(select(AuditRecord.seq, AuditRecord.hash).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)
