"""Refused funds and deductions (拒付与扣款) of confirmed flags, by the region's agreement.

At final confirmation of a bed-hanging, impersonation, 叠床, ineligibility or overdue-leave flag, the amount at
stake is the fund's payment for the days the agreement counts, and the deduction is that amount times the
agreement's multiple. Both are stored on the flag with the basis of the computation (rule, days, per-day
amount), audited; an upheld appeal sets them to zero. A day already refused by another confirmed flag of the
same admission is not refused twice (two roll-calls of one absence are one loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from models.verdicts import FlagKind, Verdict
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns.tables import CheckTask
from server.db import utcnow
from server.flags.tables import Flag, FlagStatus
from server.funds import rules
from server.funds.tables import CountedDays
from server.localtime import days_between, local_date

# OVERDUE: a bed nobody answered, confirmed by a reviewer as bed-hanging (unanswered beds are no longer absent).
MONEY_KINDS = frozenset({FlagKind.ABSENT, FlagKind.OVERDUE, FlagKind.IMPERSONATED, FlagKind.DUPLICATE_ADMISSION,
                         FlagKind.INELIGIBLE, FlagKind.LEAVE_OVERDUE})
# Not lawfully billed on any day, whatever the agreement counts for an absence.
WHOLE_ADMISSION_KINDS = frozenset({FlagKind.INELIGIBLE})


@dataclass(frozen=True)
class Amount:
    refused_fen: int
    deduction_fen: int
    basis: dict[str, Any]


def on_transition(db: Session, *, flag: Flag, before: FlagStatus, after: FlagStatus, actor: str) -> None:
    """The money side of a review decision (called by the flag transition, in its transaction)."""
    if after == FlagStatus.CONFIRMED and flag.kind in MONEY_KINDS and flag.refused_fen is None:
        amount = compute(db, flag)
        _set(db, flag, amount.refused_fen, amount.deduction_fen, actor, {**amount.basis, "on": "confirmed"})
    elif before == FlagStatus.APPEALED and after == FlagStatus.DISMISSED and flag.refused_fen is not None:
        _set(db, flag, 0, 0, actor, {**flag.details.get("funds", {}), "on": "appeal_upheld",
                                     "refused_before_fen": flag.refused_fen})


def _set(db: Session, flag: Flag, refused_fen: int, deduction_fen: int, actor: str, basis: dict[str, Any]) -> None:
    flag.refused_fen, flag.deduction_fen = refused_fen, deduction_fen
    flag.details = {**flag.details, "funds": basis}
    db.add(flag)
    audit.record(db, actor=actor, action="flag.funds", object_type="flag", object_id=flag.id or 0,
                 data={"refused_fen": refused_fen, "deduction_fen": deduction_fen, "on": basis.get("on"),
                       "days": basis.get("days"), "per_day_fen": basis.get("per_day_fen")})


def compute(db: Session, flag: Flag) -> Amount:
    """What the agreement refuses and deducts for this flag (not stored)."""
    admission = db.get(Admission, flag.admission_id) if flag.admission_id else None
    if admission is None:
        return Amount(0, 0, {"reason": "no_admission"})
    rule = rules.rule_for_hospital(db, admission.hospital_id)
    now = utcnow()
    end_of_stay = admission.discharged_at or now
    whole = flag.kind in WHOLE_ADMISSION_KINDS or rule.counted_days == CountedDays.WHOLE_ADMISSION
    if whole:
        start, end = admission.admitted_at, end_of_stay
    else:
        start, end = _presence_gap(db, flag, admission, end_of_stay)
    billed = _billed_days(start, end) - _already_refused(db, flag)
    per_day = per_day_fen(admission)
    refused = per_day * len(billed)
    multiple = rules.multiple_for(rule, flag.kind.value)
    deduction = round(refused * multiple)
    basis = {"rule": rules.rule_summary(rule), "counted": "whole_admission" if whole else rule.counted_days.value,
             "from": start.isoformat(), "to": end.isoformat(), "days": len(billed),
             "billed_days": sorted(d.isoformat() for d in billed), "per_day_fen": per_day, "multiple": multiple}
    return Amount(refused, deduction, basis)


def per_day_fen(admission: Admission) -> int:
    """The fund's payment per inpatient day: as reported, else the reported total spread over its days."""
    if admission.fund_per_day_fen is not None:
        return admission.fund_per_day_fen
    if admission.fund_total_fen is not None and admission.fund_total_at is not None:
        return round(admission.fund_total_fen / days_between(admission.admitted_at, admission.fund_total_at))
    return 0


def _event_at(db: Session, flag: Flag) -> datetime:
    if flag.kind == FlagKind.LEAVE_OVERDUE and flag.details.get("leave_ends_at"):
        return datetime.fromisoformat(flag.details["leave_ends_at"])
    task = db.get(CheckTask, flag.task_id) if flag.task_id else None
    return (task.verdict_at or task.issued_at) if task else flag.created_at


def _presence_gap(db: Session, flag: Flag, admission: Admission, end_of_stay: datetime) -> tuple[datetime, datetime]:
    """From the last verified presence before the flagged event to the next one (or the end of the stay)."""
    at = _event_at(db, flag)
    verified = select(CheckTask.verdict_at).where(CheckTask.admission_id == admission.id,
                                                  CheckTask.verdict == Verdict.VERIFIED)
    last = db.exec(select(func.max(CheckTask.verdict_at)).where(
        CheckTask.admission_id == admission.id, CheckTask.verdict == Verdict.VERIFIED,
        col(CheckTask.verdict_at) <= at)).one()
    following = db.exec(verified.where(col(CheckTask.verdict_at) > at)
                        .order_by(col(CheckTask.verdict_at)).limit(1)).first()
    start = max(last, admission.admitted_at) if last else admission.admitted_at
    if flag.kind == FlagKind.LEAVE_OVERDUE:
        start = max(start, at)  # the days of the approved leave itself are lawful
    return start, min(following, end_of_stay) if following else end_of_stay


def _billed_days(start: datetime, end: datetime) -> set[date]:
    """The inpatient days from start to end as hospitals bill them (the day of discharge is not billed)."""
    first, count = local_date(start), days_between(start, end)
    return {first + timedelta(days=i) for i in range(count)}


def _already_refused(db: Session, flag: Flag) -> set[date]:
    others = db.exec(select(Flag.details).where(Flag.admission_id == flag.admission_id, Flag.id != flag.id,
                                                col(Flag.refused_fen) > 0))
    return {date.fromisoformat(d) for details in others for d in details.get("funds", {}).get("billed_days", [])}
