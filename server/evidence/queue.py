"""The evidence queue: results waiting for their evidence check, shared by every worker through the database.

No broker and no protocol of our own: a result is a job while `evidence_checked_at` is empty. A worker claims
a batch by writing its name and a lease on them (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, so
workers on several machines never take the same rows and never wait for each other; on SQLite the write
gate serialises claims on one machine). It checks them and marks them checked in one transaction, with
their flags. A worker that dies mid-job (SIGKILL, a lost machine) commits nothing: its claim runs out after
`evidence_lease_s` and another worker takes the results again. Claims go in result order, so the oldest
results are judged first.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, update
from sqlmodel import Session, col, select

from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.db import utcnow


def worker_name() -> str:
    """This process, as its claims name it: machine and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:80]


def claim(db: Session, *, worker: str, limit: int, lease_s: float) -> list[int]:
    """Claims up to `limit` unchecked results nobody holds (or whose lease ran out); commits; their ids."""
    now = utcnow()
    lease = col(CheckResult.evidence_claimed_until)
    free = (select(CheckResult.id)
            .where(col(CheckResult.evidence_checked_at).is_(None), or_(lease.is_(None), lease < now))
            .order_by(col(CheckResult.id)).limit(limit)
            .with_for_update(skip_locked=True))  # rendered on PostgreSQL; SQLite has one writer anyway
    ids = [int(i) for i in db.exec(free).all()]  # type: ignore[call-overload]
    if ids:
        db.execute(update(CheckResult).where(col(CheckResult.id).in_(ids))
                   .values(evidence_claimed_by=worker, evidence_claimed_until=now + timedelta(seconds=lease_s)))
    db.commit()
    return ids


def release(db: Session, *, worker: str, ids: list[int]) -> None:
    """Gives back claimed results unchecked (a worker stopping in the middle of a batch); commits."""
    if ids:
        db.execute(update(CheckResult).where(col(CheckResult.id).in_(ids), CheckResult.evidence_claimed_by == worker,
                                             col(CheckResult.evidence_checked_at).is_(None))
                   .values(evidence_claimed_by=None, evidence_claimed_until=None))
    db.commit()


@dataclass(frozen=True)
class EvidenceProgress:
    """How far the evidence check of a campaign is: what the console shows ("证据核验：3,412 / 5,000")."""

    checked: int
    total: int
    in_hand: int  # claimed by a worker right now (a claim is cleared when its result is checked)

    @property
    def done(self) -> bool:
        return self.checked >= self.total


def progress(db: Session, *, campaign_id: int | None = None) -> EvidenceProgress:
    """Results of a campaign (or of all), how many are checked and how many are being checked."""
    query = select(func.count(col(CheckResult.id)), func.count(col(CheckResult.evidence_checked_at)),
                   func.count(col(CheckResult.evidence_claimed_by))).select_from(CheckResult)
    if campaign_id is not None:
        query = query.join(CheckTask, col(CheckTask.id) == col(CheckResult.task_id)).where(
            CheckTask.campaign_id == campaign_id)
    total, checked, claimed = db.exec(query).one()
    return EvidenceProgress(int(checked or 0), int(total or 0), int(claimed or 0))
