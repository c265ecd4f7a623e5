"""The audit trail: append-only, each record chained to the previous one by hash.

Editing a record breaks its own hash; deleting one breaks the next record's `prev_hash` and leaves a gap
in `seq`. Records carry ids and scores only, never face data, names or insurance numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from server.audit.tables import AuditRecord
from server.db import claim_write, utcnow

GENESIS = "0" * 64


def _digest(record: AuditRecord) -> str:
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
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    head = db.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    created_at = utcnow().replace(microsecond=0)
    written = []
    for entry in entries:
        seq += 1
        row = AuditRecord(seq=seq, created_at=created_at, actor=entry.actor, action=entry.action,
                          object_type=entry.object_type, object_id=str(entry.object_id),
                          data=json.loads(json.dumps(entry.data or {}, default=str)), prev_hash=prev_hash, hash="")
        row.hash = prev_hash = _digest(row)
        db.add(row)
        written.append(row)
    db.flush()
    return written


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    record_id: int | None
    problem: str


def verify(db: Session) -> tuple[int, list[ChainProblem]]:
    """Walks the chain; returns the number of records and every break found."""
    problems: list[ChainProblem] = []
    expected_prev, expected_seq, count = GENESIS, 1, 0
    for entry in db.exec(select(AuditRecord).order_by(col(AuditRecord.seq))):
        count += 1
        if entry.seq != expected_seq:
            problems.append(ChainProblem(expected_seq, None, f"records {expected_seq}..{entry.seq - 1} missing"))
        if entry.prev_hash != expected_prev:
            problems.append(ChainProblem(entry.seq, entry.id, "prev_hash does not match the previous record"))
        if _digest(entry) != entry.hash:
            problems.append(ChainProblem(entry.seq, entry.id, "record edited: hash does not match its content"))
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    return count, problems
