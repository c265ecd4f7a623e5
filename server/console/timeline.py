"""A flag's full story in time order (task issued, delivered, captured, received, verdict, evidence check, flag
raised, each review and appeal), and the hospital's appeal deadline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.db import utcnow
from server.flags.tables import Appeal, Flag, FlagStatus, Review

# The hospital may appeal a flag within this window after it was raised, or after it was confirmed.
APPEAL_WINDOW = timedelta(days=7)
# The workflow lets a hospital answer once a person has looked at the flag (server/flags/workflow.py).
APPEALABLE = (FlagStatus.FIRST_REVIEWED, FlagStatus.CONFIRMED)


@dataclass(frozen=True)
class Event:
    at: datetime
    key: str          # text key of what happened
    actor: str = ""   # who (a user name, a device, the system)
    detail: str = ""  # free text (a comment, a statement) shown as typed
    reason_key: str = ""  # text key of a review reason


def appeal_deadline(db: Session, flag: Flag) -> datetime | None:
    """Until when the hospital may appeal; None when the flag cannot be appealed now."""
    if flag.status not in APPEALABLE or flag.hospital_id is None:
        return None
    start = flag.created_at
    if flag.status == FlagStatus.CONFIRMED:
        confirmed = db.exec(select(Review.created_at).where(Review.flag_id == flag.id,
                                                            Review.to_status == FlagStatus.CONFIRMED)
                            .order_by(col(Review.id).desc()).limit(1)).first()
        start = confirmed or flag.updated_at
    return start + APPEAL_WINDOW


def days_left(deadline: datetime | None, now: datetime | None = None) -> int | None:
    if deadline is None:
        return None
    return (deadline - (now or utcnow())).days


def events(db: Session, flag: Flag, *, task: CheckTask | None, result: CheckResult | None,
           reviews: list[Review], appeals: list[Appeal], reason_key: dict[int, str],
           comment: dict[int, str]) -> list[Event]:
    """Every step known for this flag, oldest first."""
    found: list[Event] = []
    if task is not None:
        found.append(Event(task.issued_at, "ev_task_issued"))
        if task.delivered_at:
            found.append(Event(task.delivered_at, "ev_task_delivered"))
    if result is not None:
        found.append(Event(result.captured_at, "ev_captured", f"#{result.device_id}"))
        found.append(Event(result.received_at, "ev_received_late" if result.late else "ev_received",
                           f"#{result.device_id}"))
        if result.evidence_checked_at:
            found.append(Event(result.evidence_checked_at, "ev_evidence_checked", "system"))
    if task is not None and task.verdict_at:
        found.append(Event(task.verdict_at, "ev_verdict", "system", reason_key=task.verdict.value))
    found.append(Event(flag.created_at, "ev_flag_raised", "system"))
    for review in reviews:
        found.append(Event(review.created_at, f"ev_to_{review.to_status.value}", review.actor,
                           comment.get(review.id or 0, ""), reason_key.get(review.id or 0, "")))
    for appeal in appeals:
        found.append(Event(appeal.created_at, "ev_appeal_filed", appeal.created_by, appeal.statement))
    # A status change of an appeal is both an appeal row and a review row: keep the appeal's.
    found = [e for e in found if e.key != "ev_to_appealed"]
    return sorted(found, key=lambda e: e.at)
