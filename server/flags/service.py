"""Flags: raised for verdicts, 叠床 overlaps, silent and late devices; scoped for reading; closed by the
system when a late result or a discharge contradicts them. Review and appeal: workflow.py, appeals.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, func, select

from models.errors import NotFound
from models.verdicts import FlagKind, Verdict
from server.accounts.tables import UserAccount
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns.tables import CheckTask
from server.checks import policy
from server.db import utcnow
from server.devices.tables import Device
from server.flags import workflow
from server.flags.tables import Flag, FlagStatus


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
    if db.exec(scoped(select(Flag.id).where(Flag.id == flag.id), user)).first() is None:
        raise NotFound("flag not found")
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


def scoped(stmt: Any, user: UserAccount) -> Any:
    """Default-deny scope of every flag query (lists, counts, exports, pages): hospital staff see their own
    hospital's flags, and none of a spot check still unannounced (campaigns.service.announced_only)."""
    from server.accounts.deps import scope
    from server.campaigns.service import announced_only

    return announced_only(scope(stmt, user, Flag.hospital_id), user, Flag.campaign_id)


def sync_duplicate_admissions(db: Session, *, person_ids: Iterable[int] | None = None,
                              hospital_ids: Iterable[int] | None = None) -> tuple[int, int]:
    """叠床: one flag per pair of current admissions of one insured person in two hospitals, naming both;
    open ones whose overlap ended (one admission discharged) are resolved. Flushes; returns (raised, resolved).

    `person_ids` limits the work to the persons a roster import touched; `hospital_ids` raises only
    overlaps that involve one of these hospitals (a spot check's scope).
    """
    people = None if person_ids is None else sorted(set(person_ids))
    current = select(Admission.insured_person_id).where(col(Admission.discharged_at).is_(None))
    if people is not None:
        current = current.where(col(Admission.insured_person_id).in_(people))
    doubled = current.group_by(Admission.insured_person_id).having(
        func.count(func.distinct(Admission.hospital_id)) > 1)
    admissions = list(db.exec(select(Admission).where(
        col(Admission.insured_person_id).in_(doubled), col(Admission.discharged_at).is_(None))
        .order_by(col(Admission.id))))
    known = select(Flag).where(Flag.kind == FlagKind.DUPLICATE_ADMISSION)
    if people is not None:
        known = known.where(col(Flag.insured_person_id).in_(people))
    flags = list(db.exec(known))
    flagged = {_pair(f) for f in flags if f.status != FlagStatus.RESOLVED}
    in_scope = None if hospital_ids is None else set(hospital_ids)
    raised = 0
    for i, first in enumerate(admissions):
        for second in admissions[i + 1:]:
            if (second.insured_person_id != first.insured_person_id or second.hospital_id == first.hospital_id
                    or (first.id, second.id) in flagged
                    or (in_scope is not None and not {first.hospital_id, second.hospital_id} & in_scope)):
                continue
            flag = raise_flag(db, kind=FlagKind.DUPLICATE_ADMISSION, hospital_id=second.hospital_id, details={
                "admission_ids": [first.id, second.id], "hospital_ids": [first.hospital_id, second.hospital_id],
                "admitted_at": [first.admitted_at.isoformat(), second.admitted_at.isoformat()]})
            flag.admission_id, flag.insured_person_id = second.id, second.insured_person_id
            audit.record(db, actor="system", action="flag.raised", object_type="flag", object_id=flag.id or 0,
                         data={"kind": FlagKind.DUPLICATE_ADMISSION.value, "admission_ids": [first.id, second.id]})
            flagged.add((first.id, second.id))
            raised += 1
    return raised, _resolve_ended_overlaps(db, [f for f in flags if f.status not in CLOSED])


def flag_refused_admission(db: Session, *, hospital_id: int, insured_person_id: int, elsewhere: Admission,
                           his_admission_no: str, actor: str) -> Flag | None:
    """叠床 for a roster row refused because its person is admitted in another hospital: one open flag per
    (hospital, person, HIS admission number), so importing the same file again raises nothing new. Flushes."""
    for known in db.exec(select(Flag).where(Flag.kind == FlagKind.DUPLICATE_ADMISSION, Flag.hospital_id == hospital_id,
                                            Flag.insured_person_id == insured_person_id)):
        if known.status not in CLOSED and known.details.get("refused_his_admission_no") == his_admission_no:
            return None
    # The other hospital's admission is named by id only: the refusing hospital learns no more than the
    # refusal told it. No `admission_id`: the flag is about an admission that was not made.
    flag = raise_flag(db, kind=FlagKind.DUPLICATE_ADMISSION, hospital_id=hospital_id, details={
        "admission_ids": [elsewhere.id], "hospital_ids": [elsewhere.hospital_id, hospital_id],
        "admitted_at": [elsewhere.admitted_at.isoformat()], "refused_his_admission_no": his_admission_no,
        "reason": "admitted_elsewhere"})
    flag.insured_person_id = insured_person_id
    audit.record(db, actor=actor, action="flag.raised", object_type="flag", object_id=flag.id or 0,
                 data={"kind": FlagKind.DUPLICATE_ADMISSION.value, "admission_ids": [elsewhere.id],
                       "reason": "admitted_elsewhere"})
    return flag


CLOSED = frozenset({FlagStatus.CONFIRMED, FlagStatus.DISMISSED, FlagStatus.SUPERSEDED, FlagStatus.RESOLVED})


def _pair(flag: Flag) -> tuple[int, int] | None:
    ids = flag.details.get("admission_ids")
    return (int(ids[0]), int(ids[1])) if isinstance(ids, list) and len(ids) == 2 else None


def _resolve_ended_overlaps(db: Session, flags: list[Flag]) -> int:
    pairs = {f.id: _pair(f) for f in flags}
    ids = {a for pair in pairs.values() if pair for a in pair}
    if not ids:
        return 0
    discharged = dict(db.exec(select(Admission.id, Admission.discharged_at).where(
        col(Admission.id).in_(ids), col(Admission.discharged_at).is_not(None))).all())
    resolved = 0
    for flag in flags:
        pair = pairs[flag.id]
        ended = [a for a in pair or () if a in discharged]
        if ended and workflow.system_move(db, flag=flag, to=FlagStatus.RESOLVED,
                                          reason=f"admission #{ended[0]} discharged",
                                          data={"discharged_admission_ids": ended}):
            resolved += 1
    return resolved


def supersede_contradicted(db: Session, tasks: list[CheckTask]) -> int:
    """A late result answers a task the deadline sweep had closed: the task's open flags that its new
    verdict contradicts (overdue, absent) are superseded, pointing at the result; both stay visible."""
    by_id = {t.id: t for t in tasks}
    if not by_id:
        return 0
    flags = db.exec(select(Flag).where(col(Flag.task_id).in_(list(by_id)),
                                       col(Flag.kind).in_([FlagKind.OVERDUE, FlagKind.ABSENT]),
                                       col(Flag.status).in_([FlagStatus.OPEN, FlagStatus.FIRST_REVIEWED])))
    superseded = 0
    for flag in flags:
        task = by_id[flag.task_id]
        if policy.flag_kind(task.verdict) == flag.kind:
            continue  # the late result says the same thing
        flag.details = {**flag.details, "superseded_by_result_id": task.result_id, "late_verdict": task.verdict.value}
        if workflow.system_move(db, flag=flag, to=FlagStatus.SUPERSEDED,
                                reason=f"late result #{task.result_id}: {task.verdict.value}",
                                data={"result_id": task.result_id, "verdict": task.verdict.value}):
            superseded += 1
    return superseded


def note_late_results(db: Session, *, device_id: int, hospital_id: int, tasks: list[CheckTask]) -> None:
    """One LATE flag per campaign and device (late uploads are the institution's fault, counted per
    campaign), its count kept up to date as more late results arrive."""
    by_campaign: dict[int, list[int]] = {}
    for task in tasks:
        by_campaign.setdefault(task.campaign_id, []).append(task.id or 0)
    for campaign_id, task_ids in by_campaign.items():
        flag = next((f for f in db.exec(select(Flag).where(
            Flag.kind == FlagKind.LATE, Flag.campaign_id == campaign_id, Flag.hospital_id == hospital_id))
            if f.details.get("device_id") == device_id), None)
        if flag is None:
            flag = raise_flag(db, kind=FlagKind.LATE, hospital_id=hospital_id,
                              details={"device_id": device_id, "late_results": 0, "task_ids": []})
            flag.campaign_id = campaign_id
        flag.details = {**flag.details, "late_results": int(flag.details.get("late_results", 0)) + len(task_ids),
                        "task_ids": (list(flag.details.get("task_ids", [])) + task_ids)[:200]}
        flag.updated_at = utcnow()
        db.add(flag)


def flag_silent_wards(db: Session, *, campaign_id: int, tasks: list[CheckTask]) -> int:
    """The device's silence is its own flag: one DEVICE_OFFLINE flag per ward that answered none of this
    campaign's tasks by the deadline, naming the ward's devices, when each was last heard from and how many
    of the tasks they had received. (A ward that answered other beds was online: its unanswered beds are
    overdue on their own, a skipped bed for the reviewer.) Flushes; returns how many flags."""
    by_ward: dict[int, list[CheckTask]] = {}
    for task in tasks:
        if task.verdict == Verdict.OVERDUE:
            by_ward.setdefault(task.ward_id, []).append(task)
    answering = set(db.exec(select(CheckTask.ward_id).where(
        CheckTask.campaign_id == campaign_id, col(CheckTask.ward_id).in_(list(by_ward)),
        col(CheckTask.result_id).is_not(None)).distinct()))
    by_ward = {ward: silent for ward, silent in by_ward.items() if ward not in answering}
    if not by_ward:
        return 0
    devices: dict[int, list[Device]] = {}
    # The ward's own devices: an inspector's phone visiting the ward is not the ward's to keep online.
    for device in db.exec(select(Device).where(col(Device.ward_id).in_(list(by_ward)), Device.kind != "inspector",
                                               col(Device.revoked_at).is_(None))):
        devices.setdefault(device.ward_id, []).append(device)
    for ward_id, silent in by_ward.items():
        ward_devices = devices.get(ward_id, [])
        flag = raise_flag(db, kind=FlagKind.DEVICE_OFFLINE, hospital_id=silent[0].hospital_id, details={
            "ward_id": ward_id, "reason": "silent" if ward_devices else "no_device",
            "device_ids": [d.id for d in ward_devices],
            "last_seen_at": {str(d.id): d.last_seen_at.isoformat() if d.last_seen_at else None for d in ward_devices},
            "overdue": len(silent), "delivered": sum(t.delivered_at is not None for t in silent)})
        flag.campaign_id = campaign_id
        db.add(flag)
    return len(by_ward)
