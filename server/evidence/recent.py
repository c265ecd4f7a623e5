"""The faces captured recently, in memory, to compare each new capture with the ones before it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlmodel import Session, col, select

from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.persons.service import EMBEDDING_DTYPE

DIM = 128


@dataclass(frozen=True)
class Capture:
    result_id: int
    task_id: int
    hospital_id: int
    insured_person_id: int
    received_at: datetime


@dataclass
class RecentCaptures:
    """Checked captures of the last `window`, oldest first. Rebuilt from the database after a restart.

    Every capture is compared with all of the window's (a province's spot check: 100,000 in minutes), so a
    query must stay one pass: squared distances from one BLAS mat-vec against kept squared norms, a partial
    sort for the k nearest, and exact distances for those k only. (A full subtract-norm-argsort per query
    made the evidence check quadratic and slowed the province's uploads as it went.)
    """

    window: timedelta
    engine: str | None = None  # the engine (tag) whose captures these are; None: every engine's (tests)
    captures: list[Capture] = field(default_factory=list)
    _buffer: np.ndarray = field(default_factory=lambda: np.zeros((1024, DIM), dtype=np.float32))
    _sq_norms: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.float32))
    loaded: bool = False
    _ids: set[int] = field(default_factory=set)
    _result_ids: np.ndarray = field(default_factory=lambda: np.zeros(1024, dtype=np.int64))
    _refreshed_at: datetime | None = None

    @property
    def vectors(self) -> np.ndarray:
        return self._buffer[: len(self.captures)]

    def load(self, db: Session, now: datetime) -> None:
        """Every capture of the window with the server's encoding, checked or not: several workers judge
        results at once, and each compares a result with the captures uploaded before it (`nearest`'s
        `before_result_id`), whoever judges those."""
        self.captures, self._ids = [], set()
        self._buffer = np.zeros((1024, DIM), dtype=np.float32)
        self._sq_norms = np.zeros(1024, dtype=np.float32)
        self._result_ids = np.zeros(1024, dtype=np.int64)
        self._refreshed_at = None
        self.refresh(db, now)
        self.loaded = True

    # Uploads commit a moment after their `received_at`: a refresh looks this far back past the last one.
    COMMIT_SLACK = timedelta(minutes=2)

    def refresh(self, db: Session, now: datetime) -> None:
        """Adds the captures stored since the last refresh (the server's encoding of the crop, as
        EvidenceChecker._check compares with; the device's embedding is its word, not evidence)."""
        since = now - self.window
        if self._refreshed_at is not None:
            since = max(since, self._refreshed_at - self.COMMIT_SLACK)
        where = [col(CheckResult.server_embedding).is_not(None), CheckResult.received_at >= since]
        if self.engine is not None:
            where.append(CheckResult.server_engine_version == self.engine)
        rows = db.exec(
            select(CheckResult.id, CheckResult.task_id, CheckTask.hospital_id, CheckTask.insured_person_id,
                   CheckResult.received_at, CheckResult.server_embedding)
            .join(CheckTask, col(CheckTask.id) == col(CheckResult.task_id))
            .where(*where)
            .order_by(col(CheckResult.id))).all()
        self._refreshed_at = now
        for r in rows:
            if int(r[0]) not in self._ids:
                self.add(Capture(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]),
                         np.frombuffer(r[5], dtype=EMBEDDING_DTYPE))

    def nearest(self, vector: np.ndarray, k: int = 8, *,
                before_result_id: int | None = None) -> list[tuple[Capture, float]]:
        """The k nearest captures; with `before_result_id`, among those of earlier results only."""
        n = len(self.captures)
        if not n:
            return []
        query = vector.astype(np.float32)
        approx = self._sq_norms[:n] - 2.0 * (self.vectors @ query) + float(query @ query)
        eligible = n
        if before_result_id is not None:
            later = self._result_ids[:n] >= before_result_id
            approx[later] = np.inf
            eligible = n - int(later.sum())
            if not eligible:
                return []
        k = min(k, eligible)
        candidates = np.argpartition(approx, k - 1)[:k] if k < n else np.arange(n)
        candidates = candidates[np.isfinite(approx[candidates])]
        # Exact distances for the few candidates: the expanded form loses precision near zero, where the
        # replay threshold (0.1) lives.
        exact = np.linalg.norm(self._buffer[candidates] - query, axis=1)
        order = np.argsort(exact)
        return [(self.captures[int(candidates[i])], float(exact[i])) for i in order]

    def add(self, capture: Capture, vector: np.ndarray) -> None:
        if capture.result_id and capture.result_id in self._ids:
            return  # a refresh found it already
        self._ids.add(capture.result_id)
        if len(self.captures) == len(self._buffer):  # grow by doubling: adding stays O(1) amortised
            self._buffer = np.vstack([self._buffer, np.zeros_like(self._buffer)])
            self._sq_norms = np.concatenate([self._sq_norms, np.zeros_like(self._sq_norms)])
        if len(self._result_ids) < len(self._buffer):
            grown = np.zeros(len(self._buffer), dtype=np.int64)
            grown[: len(self._result_ids)] = self._result_ids
            self._result_ids = grown
        row = vector.astype(np.float32)
        self._buffer[len(self.captures)] = row
        self._sq_norms[len(self.captures)] = float(row @ row)
        self._result_ids[len(self.captures)] = capture.result_id
        self.captures.append(capture)

    def forget_before(self, now: datetime) -> None:
        keep = next((i for i, c in enumerate(self.captures) if c.received_at >= now - self.window),
                     len(self.captures))
        if keep:
            remaining = len(self.captures) - keep
            self._buffer[:remaining] = self._buffer[keep: len(self.captures)]
            self._sq_norms[:remaining] = self._sq_norms[keep: len(self.captures)]
            self._result_ids[:remaining] = self._result_ids[keep: len(self.captures)]
            self._ids.difference_update(c.result_id for c in self.captures[:keep])
            self.captures = self.captures[keep:]
