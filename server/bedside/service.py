"""The ward board: each bed of a device's ward with the state of its latest check, in one query per table."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlmodel import Session, col, select

from models.verdicts import Verdict
from server.campaigns.tables import CheckTask
from server.db import utcnow
from server.hospitals.tables import Bed, Ward

# How far back a decided check still shows on the board: one ward round and its review.
BOARD_WINDOW = timedelta(hours=24)

# The board's words for a verdict (the app shows them in Chinese): a nurse sees whether the bed needs a check,
# passed, or left something for review; fraud kinds are not told apart at the bed.
BOARD_STATE = {
    Verdict.PENDING: "pending", Verdict.VERIFIED: "verified", Verdict.ABSENT: "flagged",
    Verdict.IMPERSONATED: "flagged", Verdict.SPOOF: "flagged", Verdict.UNRECOGNISED: "flagged",
    Verdict.EXEMPT: "exempt", Verdict.OVERDUE: "overdue", Verdict.ON_LEAVE: "on_leave",
}


class BoardBed(BaseModel):
    bed_id: int
    bed_label: str
    state: str  # idle | pending | verified | flagged | empty | exempt | overdue | on_leave
    task_id: int | None = None
    deadline_at: datetime | None = None
    decided_at: datetime | None = None


class WardBoard(BaseModel):
    ward_id: int
    ward_name: str
    server_time: datetime
    beds: list[BoardBed]


def ward_board(db: Session, *, ward_id: int, empty_task_ids: set[int] | None = None) -> WardBoard:
    now = utcnow()
    beds = list(db.exec(select(Bed).where(Bed.ward_id == ward_id).order_by(col(Bed.label))))
    tasks = db.exec(select(CheckTask).where(CheckTask.ward_id == ward_id, CheckTask.issued_at >= now - BOARD_WINDOW)
                    .order_by(col(CheckTask.id)))
    latest: dict[int, CheckTask] = {}
    for task in tasks:
        latest[task.bed_id] = task  # ordered by id: the newest wins
    empty = empty_task_ids if empty_task_ids is not None else _reported_empty(db, [t.id or 0 for t in latest.values()])
    out = []
    for bed in beds:
        task = latest.get(bed.id or 0)
        if task is None:
            out.append(BoardBed(bed_id=bed.id or 0, bed_label=bed.label, state="idle"))
            continue
        state = BOARD_STATE.get(task.verdict, "flagged")
        if task.verdict == Verdict.PENDING and task.deadline_at <= now:
            state = "overdue"
        if task.verdict == Verdict.ABSENT and task.id in empty:
            state = "empty"
        out.append(BoardBed(bed_id=bed.id or 0, bed_label=bed.label, state=state, task_id=task.id,
                            deadline_at=task.deadline_at, decided_at=task.verdict_at))
    ward = db.get(Ward, ward_id)
    return WardBoard(ward_id=ward_id, ward_name=ward.name if ward else "", server_time=now, beds=out)


def _reported_empty(db: Session, task_ids: list[int]) -> set[int]:
    from models.verdicts import CaptureOutcome
    from server.checks.tables import CheckResult

    if not task_ids:
        return set()
    rows = db.exec(select(CheckResult.task_id).where(col(CheckResult.task_id).in_(task_ids),
                                                     CheckResult.outcome == CaptureOutcome.BED_EMPTY))
    return set(rows)
