"""Approved leave (请假): registered before it starts, signed by the attending doctor and the insurance office.

A check that finds the bed empty inside a leave registered before the check's task was issued is `on_leave`
(no bed-hanging flag); a leave registered later changes nothing of that task (it can be cited in an appeal).
A patient not back by the leave's end is flagged `leave_overdue`; a leave over a night, where the region's
agreement forbids it, is flagged `leave_overnight` when registered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, or_, select

from models.errors import ApproversNotDistinct, Conflict, InvalidInput, NotFound
from models.names import CleanedName, clean_name
from models.verdicts import FlagKind
from server.accounts.deps import check_hospital, scope
from server.accounts.tables import UserAccount
from server.admissions.tables import Admission, Leave
from server.audit import service as audit
from server.db import utcnow
from server.flags.tables import Flag
from server.funds import rules
from server.hospitals.tables import Ward
from server.localtime import LOCAL_TZ

# A tablet's or a browser's clock a little behind the server's must not make a leave "already started".
START_TOLERANCE = timedelta(minutes=5)
MAX_LEAVE = timedelta(days=7)


def register_leave(db: Session, *, actor: UserAccount, admission_id: int, starts_at: datetime, ends_at: datetime,
                   reason: str, approved_by_doctor: str, approved_by_insurance_officer: str) -> Leave:
    """Registers an approved leave of a current admission; flags it if it covers a forbidden night; commits."""
    admission = db.get(Admission, admission_id)
    if admission is None:
        raise NotFound("admission not found")
    check_hospital(actor, admission.hospital_id, "admission")
    now = utcnow()
    doctor, officer = approvers(approved_by_doctor, approved_by_insurance_officer)
    _check(admission, starts_at, ends_at, now, reason, doctor.value, officer.value)
    overlapping = db.exec(select(Leave.id).where(Leave.admission_id == admission_id, Leave.starts_at < ends_at,
                                                 Leave.ends_at > starts_at,
                                                 col(Leave.returned_at).is_(None))).first()
    if overlapping is not None:
        raise Conflict(f"this admission already has leave #{overlapping} in that time")
    leave = Leave(admission_id=admission_id, hospital_id=admission.hospital_id, starts_at=starts_at, ends_at=ends_at,
                  reason=reason.strip(), approved_by_doctor=doctor.value,
                  approved_by_insurance_officer=officer.value, created_by=actor.username,
                  created_at=now)
    db.add(leave)
    db.flush()
    rule = rules.rule_for_hospital(db, admission.hospital_id)
    overnight = not rule.leave_overnight_allowed and rules.covers_night(rule, starts_at, ends_at)
    if overnight:
        _raise(db, FlagKind.LEAVE_OVERNIGHT, leave, admission, {"night": f"{rule.night_starts}-{rule.night_ends}"})
    audit.record(db, actor=f"user:{actor.id}", action="leave.registered", object_type="admission",
                 object_id=admission_id, data={"leave_id": leave.id, "starts_at": starts_at.isoformat(),
                                               "ends_at": ends_at.isoformat(), "overnight": overnight,
                                               "names_cleaned": [*doctor.removed, *officer.removed]})
    db.commit()
    return leave


def approvers(doctor: str, officer: str) -> tuple[CleanedName, CleanedName]:
    """The two approvers' names under the name rule (models/names.py), or an error: a name of nothing visible,
    a bidi or control character (NameRefused), or one person as both (ApproversNotDistinct)."""
    cleaned = (clean_name(doctor, field="approved_by_doctor"),
               clean_name(officer, field="approved_by_insurance_officer"))
    same = [name.value.casefold().replace(" ", "") for name in cleaned]
    if same[0] == same[1]:
        raise ApproversNotDistinct(field="approved_by_insurance_officer", name=cleaned[0].value)
    return cleaned


@dataclass(frozen=True)
class LeaveVolume:
    hospital_id: int
    ward_id: int
    ward: str
    day: date
    leaves: int


def leave_volume(db: Session, user: UserAccount, *, today: date, days_back: int = 13,
                 days_ahead: int = 7) -> list[LeaveVolume]:
    """Leaves in scope covering each local day, per ward, from `days_back` before today to `days_ahead` after:
    many patients of one ward away on one day is a bed-hanging pattern. Busiest first within each day."""
    first, last = today - timedelta(days=days_back), today + timedelta(days=days_ahead)
    start = datetime(first.year, first.month, first.day, tzinfo=LOCAL_TZ)
    end = datetime(last.year, last.month, last.day, tzinfo=LOCAL_TZ) + timedelta(days=1)
    stmt = scope(select(Leave, Admission.ward_id, Ward.code, Ward.name)
                 .join(Admission, col(Admission.id) == Leave.admission_id)
                 .join(Ward, col(Ward.id) == Admission.ward_id)
                 .where(Leave.starts_at < end, Leave.ends_at > start), user, Leave.hospital_id)
    counts: Counter[tuple[int, int, str, date]] = Counter()
    for leave, ward_id, code, name in db.exec(stmt):
        back = min(leave.ends_at, leave.returned_at or leave.ends_at)
        day = max(leave.starts_at.astimezone(LOCAL_TZ).date(), first)
        while day <= min(back.astimezone(LOCAL_TZ).date(), last):
            counts[(leave.hospital_id, ward_id, f"{name or code}", day)] += 1
            day += timedelta(days=1)
    rows = [LeaveVolume(h, w, label, day, n) for (h, w, label, day), n in counts.items()]
    return sorted(rows, key=lambda r: (-r.day.toordinal(), -r.leaves, r.hospital_id, r.ward))


def _check(admission: Admission, starts_at: datetime, ends_at: datetime, now: datetime, *texts: str) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise InvalidInput("leave times need a time zone (e.g. 2026-12-02T14:00:00+08:00)")
    if admission.discharged_at is not None:
        raise InvalidInput("the patient has been discharged")
    if starts_at < now - START_TOLERANCE:
        raise InvalidInput("a leave is registered before it starts")
    if ends_at <= starts_at:
        raise InvalidInput("the leave ends before it starts")
    if ends_at - starts_at > MAX_LEAVE:
        raise InvalidInput(f"a leave is at most {MAX_LEAVE.days} days")
    if not all(t.strip() for t in texts):
        raise InvalidInput("a leave needs a reason, the attending doctor and the insurance officer who approved it")
    if any(len(t) > 200 for t in texts):
        raise InvalidInput("reason or approver names are too long")


def record_return(db: Session, *, actor: UserAccount, leave_id: int) -> Leave:
    """The patient is back: notes the time; a late return is flagged; audited; commits."""
    leave = db.get(Leave, leave_id)
    if leave is None:
        raise NotFound("leave not found")
    check_hospital(actor, leave.hospital_id, "leave")
    if leave.returned_at is not None:
        raise Conflict("the return is already recorded")
    leave.returned_at = utcnow()
    db.add(leave)
    audit.record(db, actor=f"user:{actor.id}", action="leave.returned", object_type="admission",
                 object_id=leave.admission_id, data={"leave_id": leave.id, "late": leave.returned_at > leave.ends_at})
    flag_overdue_leaves(db, now=leave.returned_at, leave_ids=[leave.id or 0])
    db.commit()
    return leave


def flag_overdue_leaves(db: Session, *, now: datetime, leave_ids: list[int] | None = None) -> int:
    """A `leave_overdue` flag for each leave past its end whose patient is not back (or came back late); flushes."""
    stmt = select(Leave, Admission).join(Admission, col(Admission.id) == Leave.admission_id).where(
        Leave.ends_at < now, col(Leave.overdue_flagged_at).is_(None),
        or_(col(Leave.returned_at).is_(None), col(Leave.returned_at) > col(Leave.ends_at)))
    if leave_ids is not None:
        stmt = stmt.where(col(Leave.id).in_(leave_ids))
    count = 0
    for leave, admission in db.exec(stmt):
        back = leave.returned_at
        _raise(db, FlagKind.LEAVE_OVERDUE, leave, admission,
               {"returned_at": back.isoformat() if back else None, "overdue_s": int(((back or now) - leave.ends_at)
                                                                                    .total_seconds())})
        leave.overdue_flagged_at = now
        db.add(leave)
        count += 1
    if count:
        audit.record(db, actor="system", action="leave.overdue_flagged", object_type="leave", object_id="*",
                     data={"flags": count})
    return count


def _raise(db: Session, kind: FlagKind, leave: Leave, admission: Admission, extra: dict[str, object]) -> None:
    db.add(Flag(kind=kind, hospital_id=admission.hospital_id, admission_id=admission.id,
                insured_person_id=admission.insured_person_id,
                details={"leave_id": leave.id, "leave_starts_at": leave.starts_at.isoformat(),
                         "leave_ends_at": leave.ends_at.isoformat(), **extra}))
    db.flush()


def leaves_of(db: Session, admission_ids: Iterable[int]) -> dict[int, list[Leave]]:
    """Every leave of these admissions, by admission."""
    ids = sorted(set(admission_ids))
    found: dict[int, list[Leave]] = defaultdict(list)
    for start in range(0, len(ids), 10_000):
        for leave in db.exec(select(Leave).where(col(Leave.admission_id).in_(ids[start:start + 10_000]))):
            found[leave.admission_id].append(leave)
    return found


def covering_leave(leaves: list[Leave], *, issued_at: datetime, at: datetime) -> Leave | None:
    """The leave that excuses an empty bed at `at` for a task issued at `issued_at`: one registered before the
    task was issued (a leave written up after the check was announced cannot excuse it)."""
    for leave in leaves:
        back = leave.returned_at
        if (leave.created_at <= issued_at and leave.starts_at <= at <= leave.ends_at
                and (back is None or back > at)):
            return leave
    return None


def list_leaves(db: Session, user: UserAccount, *, hospital_id: int | None = None, limit: int = 200) -> list[Leave]:
    """Newest leaves within the user's scope."""
    stmt = scope(select(Leave), user, Leave.hospital_id)
    if hospital_id is not None:
        check_hospital(user, hospital_id, "hospital")
        stmt = stmt.where(Leave.hospital_id == hospital_id)
    return list(db.exec(stmt.order_by(col(Leave.id).desc()).limit(limit)))
