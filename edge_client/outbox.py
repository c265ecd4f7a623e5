"""The device's local SQLite database: tasks received, the roster, and every result before any upload.

A result row is committed (WAL, synchronous=FULL) before its first upload and moves
pending -> uploading -> sent | rejected. A crash leaves at worst a row in `uploading`; `repair` turns it
back to `pending` at start and the idempotency key makes the second upload a duplicate the server acks
without storing it twice. Once acknowledged, the evidence (crop, embedding) is dropped and only the
receipt (verdict, evidence hash, times) stays.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from models.wire import ResultAck, ResultUpload, TaskBatch, TaskRead, WardRoster

SCHEMA = """
CREATE TABLE IF NOT EXISTS task (
    task_id INTEGER PRIMARY KEY,
    bed_id INTEGER NOT NULL,
    bed_label TEXT NOT NULL,
    deadline_at TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    answered INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS result (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    task_id INTEGER NOT NULL UNIQUE,
    bed_label TEXT NOT NULL,
    outcome TEXT NOT NULL,
    local_verdict TEXT NOT NULL,
    distance REAL,
    evidence_sha256 TEXT,
    payload TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    sent_at TEXT,
    server_verdict TEXT,
    duplicate INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS result_state ON result (state, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class ResultState(StrEnum):
    PENDING = "pending"
    UPLOADING = "uploading"
    SENT = "sent"
    REJECTED = "rejected"


class AlreadyAnswered(Exception):
    """This task already has a result in the outbox: one task, one result."""


@dataclass(frozen=True)
class StoredResult:
    id: int
    idempotency_key: str
    task_id: int
    bed_label: str
    outcome: str
    local_verdict: str
    distance: float | None
    evidence_sha256: str | None
    state: ResultState
    attempts: int
    last_error: str
    created_at: str
    sent_at: str | None
    server_verdict: str | None
    duplicate: bool
    payload: str | None

    def upload(self) -> ResultUpload:
        assert self.payload is not None, "an acknowledged result has no payload left"
        return ResultUpload.model_validate_json(self.payload)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # One connection shared by the device's threads, serialised by a lock: writes are small and rare.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed result survives power loss, not only a killed process.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- crash repair ------------------------------------------------------------------------------
    def repair(self) -> int:
        """Rows a killed process left `uploading` go back to `pending`; returns how many."""
        with self._write() as db:
            return db.execute("UPDATE result SET state = ? WHERE state = ?",
                              (ResultState.PENDING, ResultState.UPLOADING)).rowcount

    # --- tasks -------------------------------------------------------------------------------------
    def store_tasks(self, batch: TaskBatch) -> list[TaskRead]:
        """Keeps the server's pending list; unanswered tasks it no longer lists were closed there. Returns new ones."""
        with self._write() as db:
            known = {row[0] for row in db.execute("SELECT task_id FROM task")}
            fresh = [t for t in batch.tasks if t.task_id not in known]
            for task in fresh:
                db.execute("INSERT INTO task (task_id, bed_id, bed_label, deadline_at, body, received_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (task.task_id, task.bed_id, task.bed_label,
                                                         task.deadline_at.isoformat(), task.model_dump_json(), _now()))
            listed = [t.task_id for t in batch.tasks]
            marks = ",".join("?" * len(listed)) or "NULL"
            db.execute(f"DELETE FROM task WHERE answered = 0 AND task_id NOT IN ({marks})", listed)
            return fresh

    def add_task(self, task: TaskRead) -> None:
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO task (task_id, bed_id, bed_label, deadline_at, body, received_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (task.task_id, task.bed_id, task.bed_label,
                                                     task.deadline_at.isoformat(), task.model_dump_json(), _now()))

    def open_tasks(self) -> list[TaskRead]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM task WHERE answered = 0 ORDER BY task_id").fetchall()
        return [TaskRead.model_validate_json(r[0]) for r in rows]

    def open_task_for_bed(self, bed_label: str) -> TaskRead | None:
        return next((t for t in self.open_tasks() if t.bed_label == bed_label), None)

    # --- results -----------------------------------------------------------------------------------
    def add_result(self, upload: ResultUpload, *, bed_label: str, local_verdict: str) -> int:
        """Commits a result and marks its task answered, in one transaction, before any upload."""
        with self._write() as db:
            if db.execute("SELECT 1 FROM result WHERE task_id = ?", (upload.task_id,)).fetchone():
                raise AlreadyAnswered(f"task {upload.task_id} already has a result")
            cursor = db.execute(
                "INSERT INTO result (idempotency_key, task_id, bed_label, outcome, local_verdict, distance, "
                "evidence_sha256, payload, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (upload.idempotency_key, upload.task_id, bed_label, upload.outcome.value, local_verdict,
                 upload.distance, upload.evidence_sha256, upload.model_dump_json(), ResultState.PENDING, _now()))
            db.execute("UPDATE task SET answered = 1 WHERE task_id = ?", (upload.task_id,))
            return int(cursor.lastrowid or 0)

    def next_pending(self) -> StoredResult | None:
        """Claims the oldest pending result (marks it `uploading`)."""
        with self._write() as db:
            row = db.execute("SELECT * FROM result WHERE state = ? ORDER BY id LIMIT 1",
                             (ResultState.PENDING,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE result SET state = ?, attempts = attempts + 1 WHERE id = ?",
                       (ResultState.UPLOADING, row["id"]))
        return _stored(row, state=ResultState.UPLOADING)

    def mark_sent(self, result_id: int, ack: ResultAck) -> None:
        """The server has it: drop the evidence, keep the receipt."""
        with self._write() as db:
            db.execute("UPDATE result SET state = ?, payload = NULL, sent_at = ?, server_verdict = ?, duplicate = ?, "
                       "last_error = '' WHERE id = ?",
                       (ResultState.SENT, _now(), ack.verdict.value, int(ack.duplicate), result_id))

    def mark_rejected(self, result_id: int, error: str) -> None:
        """The server's final no (4xx): kept with its evidence for a person to look at, never retried."""
        with self._write() as db:
            db.execute("UPDATE result SET state = ?, last_error = ? WHERE id = ?",
                       (ResultState.REJECTED, error[:500], result_id))

    def release(self, result_id: int, error: str) -> None:
        """Upload failed for now (network, 5xx): back to pending for a later sweep."""
        with self._write() as db:
            db.execute("UPDATE result SET state = ?, last_error = ? WHERE id = ? AND state = ?",
                       (ResultState.PENDING, error[:500], result_id, ResultState.UPLOADING))

    def results(self, limit: int = 200) -> list[StoredResult]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM result ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_stored(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM result GROUP BY state").fetchall()
        found = {str(state): int(n) for state, n in rows}
        return {state.value: found.get(state.value, 0) for state in ResultState}

    def unacknowledged(self) -> int:
        counts = self.counts()
        return counts[ResultState.PENDING] + counts[ResultState.UPLOADING]

    # --- roster and meta ---------------------------------------------------------------------------
    def save_roster(self, roster: WardRoster) -> None:
        self.set_meta("roster", roster.model_dump_json())

    def roster(self) -> WardRoster | None:
        raw = self.meta("roster")
        return WardRoster.model_validate_json(raw) if raw else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                       (key, value, value))

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None


def _stored(row: sqlite3.Row, state: ResultState | None = None) -> StoredResult:
    return StoredResult(
        id=row["id"], idempotency_key=row["idempotency_key"], task_id=row["task_id"], bed_label=row["bed_label"],
        outcome=row["outcome"], local_verdict=row["local_verdict"], distance=row["distance"],
        evidence_sha256=row["evidence_sha256"], state=state or ResultState(row["state"]),
        attempts=row["attempts"] + (1 if state == ResultState.UPLOADING else 0), last_error=row["last_error"],
        created_at=row["created_at"], sent_at=row["sent_at"], server_verdict=row["server_verdict"],
        duplicate=bool(row["duplicate"]), payload=row["payload"])
