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

    @property
    def vectors(self) -> np.ndarray:
        return self._buffer[: len(self.captures)]

    def load(self, db: Session, now: datetime) -> None:
        # The server's encoding of the crop, as EvidenceChecker._check compares with (the device's embedding
        # is its word, not evidence), of this index's engine only.
        where = [col(CheckResult.evidence_checked_at).is_not(None), col(CheckResult.server_embedding).is_not(None),
                 CheckResult.received_at >= now - self.window]
        if self.engine is not None:
            where.append(CheckResult.server_engine_version == self.engine)
        rows = db.exec(
            select(CheckResult.id, CheckResult.task_id, CheckTask.hospital_id, CheckTask.insured_person_id,
                   CheckResult.received_at, CheckResult.server_embedding)
            .join(CheckTask, col(CheckTask.id) == col(CheckResult.task_id))
            .where(*where)
            .order_by(col(CheckResult.id))).all()
        self.captures = [Capture(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]
        self._buffer = np.zeros((max(1024, 2 * len(rows)), DIM), dtype=np.float32)
        self._sq_norms = np.zeros(len(self._buffer), dtype=np.float32)
        if rows:
            stored = np.frombuffer(b"".join(r[5] for r in rows), dtype=EMBEDDING_DTYPE)
            self._buffer[: len(rows)] = stored.reshape(-1, DIM)
            self._sq_norms[: len(rows)] = np.einsum("ij,ij->i", self.vectors, self.vectors)
        self.loaded = True

    def nearest(self, vector: np.ndarray, k: int = 8) -> list[tuple[Capture, float]]:
        n = len(self.captures)
        if not n:
            return []
        query = vector.astype(np.float32)
        approx = self._sq_norms[:n] - 2.0 * (self.vectors @ query) + float(query @ query)
        k = min(k, n)
        candidates = np.argpartition(approx, k - 1)[:k] if k < n else np.arange(n)
        # Exact distances for the few candidates: the expanded form loses precision near zero, where the
        # replay threshold (0.1) lives.
        exact = np.linalg.norm(self._buffer[candidates] - query, axis=1)
        order = np.argsort(exact)
        return [(self.captures[int(candidates[i])], float(exact[i])) for i in order]

    def add(self, capture: Capture, vector: np.ndarray) -> None:
        if len(self.captures) == len(self._buffer):  # grow by doubling: adding stays O(1) amortised
            self._buffer = np.vstack([self._buffer, np.zeros_like(self._buffer)])
            self._sq_norms = np.concatenate([self._sq_norms, np.zeros_like(self._sq_norms)])
        row = vector.astype(np.float32)
        self._buffer[len(self.captures)] = row
        self._sq_norms[len(self.captures)] = float(row @ row)
        self.captures.append(capture)

    def forget_before(self, now: datetime) -> None:
        keep = next((i for i, c in enumerate(self.captures) if c.received_at >= now - self.window),
                     len(self.captures))
        if keep:
            remaining = len(self.captures) - keep
            self._buffer[:remaining] = self._buffer[keep: len(self.captures)]
            self._sq_norms[:remaining] = self._sq_norms[keep: len(self.captures)]
            self.captures = self.captures[keep:]
