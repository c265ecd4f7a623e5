"""Counting refusals instead of auditing each: one audit record per interval carries the counts."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import AbstractContextManager

from sqlalchemy.engine import Engine


class RefusalCounter:
    """Refusals (device credentials, sign-ins), counted in memory and written as one audit record per interval.

    Writing a record per refusal let anyone without a credential write to the audit trail at will (and,
    outside the write gate, collide on its sequence: 500s under a flood of forged tokens).
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._since = time.monotonic()

    def add(self, code: str) -> dict[str, int] | None:
        """Counts one refusal; returns the counts to write when the interval has passed (and starts anew)."""
        with self._lock:
            self._counts[code] += 1
            if time.monotonic() - self._since < self.interval_s:
                return None
            counts, self._counts, self._since = dict(self._counts), Counter(), time.monotonic()
            return counts

    def flush(self) -> dict[str, int]:
        with self._lock:
            counts, self._counts, self._since = dict(self._counts), Counter(), time.monotonic()
            return counts


def write_summary(engine: Engine, gate: AbstractContextManager[object], counts: dict[str, int], *, actor: str,
                  action: str) -> None:
    """One audit record for the refusals counted since the last one (under the write gate)."""
    from server.audit import service as audit
    from server.db import gated_session

    with gated_session(engine, gate) as db:  # type: ignore[arg-type]
        audit.record(db, actor=actor, action=action, object_type="request", object_id="summary",
                     data={"counts": counts, "total": sum(counts.values())})
        db.commit()
