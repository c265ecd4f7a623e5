"""Flags: one per non-verified verdict (and per duplicate admission), then two-level review and appeal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, func, select

from models.errors import Conflict, NotFound, PermissionDenied
from models.verdicts import FlagKind
from server.accounts.tables import Role, UserAccount
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns.tables import CheckTask
from server.checks import policy
from server.db import claim_write, utcnow
from server.flags.tables import Flag, FlagStatus, Review
from server.funds import service as funds_service


def raise_for_tasks(db: Session, tasks: list[CheckTask], details: dict[int, dict[str, Any]] | None = None) -> int:
    """Adds a flag for each task whose verdict calls for one; returns how many."""
    now = utcnow()
    rows = [
        {"kind": policy.flag_kind(t.verdict), "status": FlagStatus.OPEN, "hospital_id": t.hospital_id,
         "campaign_id": t.campaign_id, "task_id": t.id, "admission_id": t.admission_id,
         "insured_person_id": t.insured_person_id, "details": (details or {}).get(t.id or 0, {}),
         "created_at": now, "updated_at": now}
        for t in tasks if policy.flag_kind(t.verdict) is not None
    ]
    if rows:
        db.execute(insert(Flag), rows)
    return len(rows)


def load_flag(db: Session, user: UserAccount, flag_id: int) -> Flag:
    """The flag, or 404 when it does not exist or belongs to another hospital."""
    from server.accounts.deps import check_hospital  # deps imports nothing of flags: no cycle

    flag = db.get(Flag, flag_id)
    if flag is None:
        raise NotFound("flag not found")
    check_hospital(user, flag.hospital_id or -1, "flag")
    return flag


def raise_flag(db: Session, *, kind: FlagKind, hospital_id: int | None, details: dict[str, Any],
               task: CheckTask | None = None) -> Flag:
    flag = Flag(kind=kind, hospital_id=hospital_id, details=details,
                campaign_id=task.campaign_id if task else None, task_id=task.id if task else None,
                admission_id=task.admission_id if task else None,
                insured_person_id=task.insured_person_id if task else None)
    db.add(flag)
    db.flush()
    return flag


def flag_duplicate_admissions(db: Session, *, hospital_ids: list[int] | None = None) -> int:
    """Same insured person currently admitted in two hospitals (叠床): one open flag per admission."""
    current = select(Admission.insured_person_id).where(col(Admission.discharged_at).is_(None))
    doubled = current.group_by(Admission.insured_person_id).having(
        func.count(func.distinct(Admission.hospital_id)) > 1)
    admissions = list(db.exec(select(Admission).where(
        col(Admission.insured_person_id).in_(doubled), col(Admission.discharged_at).is_(None))))
    already = set(db.exec(select(Flag.admission_id).where(Flag.kind == FlagKind.DUPLICATE_ADMISSION)))
    created = 0
    for admission in admissions:
        if admission.id in already or (hospital_ids and admission.hospital_id not in hospital_ids):
            continue
        others = sorted({a.hospital_id for a in admissions
                         if a.insured_person_id == admission.insured_person_id and a.id != admission.id})
        db.add(Flag(kind=FlagKind.DUPLICATE_ADMISSION, hospital_id=admission.hospital_id,
                    admission_id=admission.id, insured_person_id=admission.insured_person_id,
                    details={"also_admitted_in_hospital_ids": others}))
        created += 1
    return created


# Who may move a flag from one status to another. An appeal reopens final review.
ALLOWED: dict[tuple[FlagStatus, FlagStatus], set[Role]] = {
    (FlagStatus.OPEN, FlagStatus.FIRST_REVIEWED): {Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN},
    (FlagStatus.OPEN, FlagStatus.DISMISSED): {Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN},
    (FlagStatus.FIRST_REVIEWED, FlagStatus.CONFIRMED): {Role.SUPERVISOR, Role.ADMIN},
    (FlagStatus.FIRST_REVIEWED, FlagStatus.DISMISSED): {Role.SUPERVISOR, Role.ADMIN},
    (FlagStatus.OPEN, FlagStatus.APPEALED): {Role.HOSPITAL_STAFF},
    (FlagStatus.FIRST_REVIEWED, FlagStatus.APPEALED): {Role.HOSPITAL_STAFF},
    (FlagStatus.CONFIRMED, FlagStatus.APPEALED): {Role.HOSPITAL_STAFF},
    (FlagStatus.APPEALED, FlagStatus.CONFIRMED): {Role.SUPERVISOR, Role.ADMIN},
    (FlagStatus.APPEALED, FlagStatus.DISMISSED): {Role.SUPERVISOR, Role.ADMIN},
}


def transition(db: Session, *, flag: Flag, to: FlagStatus, actor: UserAccount, reason: str) -> Flag:
    """Moves a flag if the actor's role allows it, records the review and the audit entry, commits."""
    claim_write(db)
    db.refresh(flag)  # the status as it is under the write lock, not as it was read
    roles = ALLOWED.get((flag.status, to))
    if roles is None:
        raise Conflict(f"a flag cannot go from {flag.status.value} to {to.value}")
    if actor.role not in roles:
        raise PermissionDenied(f"{actor.role.value} cannot move a flag to {to.value}")
    if actor.role == Role.HOSPITAL_STAFF and actor.hospital_id != flag.hospital_id:
        raise NotFound("flag not found")
    db.add(Review(flag_id=flag.id or 0, from_status=flag.status, to_status=to, reason=reason, actor=actor.username))
    audit.record(db, actor=f"user:{actor.id}", action="flag.transition", object_type="flag", object_id=flag.id or 0,
                 data={"from": flag.status.value, "to": to.value})
    before = flag.status
    flag.status, flag.updated_at = to, utcnow()
    funds_service.on_transition(db, flag=flag, before=before, after=to, actor=f"user:{actor.id}")
    db.add(flag)
    db.commit()
    return flag

