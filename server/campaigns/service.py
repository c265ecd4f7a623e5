"""Spot checks and roll-calls: one check task per current admission in scope, with nonce and deadline."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, update
from sqlmodel import Session, col, select

from models.errors import InvalidInput, NotFound
from models.faces.liveness.actions import draw_challenge
from models.verdicts import EXCUSED_VERDICTS, FINAL_VERDICTS, FlagKind, Verdict
from server.accounts.tables import Role, UserAccount
from server.admissions import leave as leave_service
from server.admissions.tables import Admission, Exemption
from server.audit import service as audit
from server.campaigns.tables import Campaign, CampaignKind, CampaignStatus, CheckTask
from server.checks import policy
from server.db import utcnow
from server.flags import service as flag_service
from server.flags.tables import Flag, FlagStatus
from server.hospitals.tables import Hospital
from server.regions.tables import Region


def resolve_scope(db: Session, *, county: str | None = None, hospitals: list[str] | None = None) -> list[int]:
    """Hospital ids for a county name or hospital ids/codes; an unknown name is an error, not an empty check."""
    if county:
        region = db.exec(select(Region).where(Region.name == county, Region.level == "county")).first()
        if region is None:
            raise InvalidInput(f"unknown county {county!r}")
        ids = list(db.exec(select(Hospital.id).where(Hospital.county_id == region.id)))
    elif hospitals:
        ids = []
        for ref in hospitals:
            found = db.exec(select(Hospital.id).where(or_(Hospital.code == ref, Hospital.id == _as_int(ref)))).first()
            if found is None:
                raise InvalidInput(f"unknown hospital {ref!r}")
            ids.append(found)
    else:
        # Never "every hospital of the database" by omission: a spot check names its scope.
        raise InvalidInput("a spot check needs a county or at least one hospital", field="scope")
    return [int(i) for i in ids if i is not None]


def _as_int(ref: str) -> int:
    return int(ref) if ref.isdigit() else -1


# The liveness challenge of each task: unpredictable to devices (a recorded clip cannot follow it).
_CHALLENGE_RNG = secrets.SystemRandom()
CHALLENGE_LENGTH = 2


def create_campaign(db: Session, *, hospital_ids: list[int], deadline_s: int, actor: str,
                    kind: CampaignKind = CampaignKind.SPOT_CHECK, scope: dict[str, Any] | None = None,
                    admission_ids: list[int] | None = None, challenge_length: int = CHALLENGE_LENGTH,
                    inspector_device_id: int | None = None) -> Campaign:
    """Creates the campaign and, in bulk, one task per current admission (each with its nonce and its random
    liveness challenge); exempt admissions close at once."""
    if deadline_s <= 0:
        raise InvalidInput("the deadline must be in the future")
    if not hospital_ids:
        raise InvalidInput("the check's scope holds no hospital", field="scope")
    now = utcnow()
    campaign = Campaign(kind=kind, scope=scope or {"hospital_ids": hospital_ids}, created_by=actor,
                        created_at=now, deadline_at=now + timedelta(seconds=deadline_s),
                        inspector_device_id=inspector_device_id)
    db.add(campaign)
    db.flush()
    current = select(Admission).where(col(Admission.hospital_id).in_(hospital_ids),
                                      col(Admission.discharged_at).is_(None), Admission.admitted_at <= now)
    if admission_ids is not None:
        current = current.where(col(Admission.id).in_(admission_ids))
    admissions = list(db.exec(current))
    exempt = _exempt_admission_ids(db, current.with_only_columns(col(Admission.id)).subquery(), now)
    rows = [
        {
            "campaign_id": campaign.id, "admission_id": a.id, "insured_person_id": a.insured_person_id,
            "hospital_id": a.hospital_id, "ward_id": a.ward_id, "bed_id": a.bed_id,
            "nonce": secrets.token_urlsafe(24), "issued_at": now, "deadline_at": campaign.deadline_at,
            "verdict": policy.initial_verdict(policy.TaskContext(is_exempt=a.id in exempt)),
            "verdict_at": now if a.id in exempt else None, "late": False,
            "challenge": [action.value for action in draw_challenge(_CHALLENGE_RNG, challenge_length)],
        }
        for a in admissions
    ]
    # Multi-row INSERTs of 1,000: one statement per row (executemany) costs a round trip each, minutes for
    # a province; 1,000 rows x 13 columns stays under PostgreSQL's 65,535 bind parameters.
    for start in range(0, len(rows), 1000):
        db.execute(insert(CheckTask).values(rows[start:start + 1000]))
    campaign.task_count = len(rows)
    if kind == CampaignKind.SPOT_CHECK:
        # 叠床 is checked at every spot check too, in case an overlap came in by another door than the roster.
        flag_service.sync_duplicate_admissions(db, hospital_ids=hospital_ids)
    audit.record(db, actor=actor, action="campaign.created", object_type="campaign", object_id=campaign.id or 0,
                 data={"kind": kind.value, "hospitals": len(hospital_ids), "tasks": len(rows),
                       "exempt": len(exempt), "deadline_s": deadline_s})
    db.commit()
    return campaign


def _exempt_admission_ids(db: Session, in_scope: Any, at: datetime) -> set[int]:
    # A subquery, not a list of ids: a province has more admissions than PostgreSQL takes bind parameters.
    stmt = select(Exemption.admission_id).where(
        col(Exemption.admission_id).in_(select(in_scope.c.id)), Exemption.starts_at <= at,
        or_(col(Exemption.ends_at).is_(None), col(Exemption.ends_at) > at))
    return {int(i) for i in db.exec(stmt)}


def pending_tasks_for_ward(db: Session, *, ward_id: int, device_id: int | None = None,
                           limit: int = 500) -> list[CheckTask]:
    """Tasks of a ward still waiting for a result (late answers to overdue ones are still welcome).

    An inspector's on-site check is for that inspector's device alone (`device_id`): the ward's own devices
    never see its tasks, so the hospital cannot answer the bureau's check for it."""
    stmt = (select(CheckTask)
            .where(CheckTask.ward_id == ward_id, col(CheckTask.result_id).is_(None),
                   col(CheckTask.verdict).in_([Verdict.PENDING, Verdict.OVERDUE]),
                   CheckTask.issued_at > utcnow() - timedelta(days=1),
                   col(CheckTask.campaign_id).not_in(inspections_of_others(device_id)))
            .order_by(col(CheckTask.id)).limit(limit))
    return list(db.exec(stmt))


def inspections_of_others(device_id: int | None) -> Any:
    """Campaigns that are another device's on-site inspection (all inspections when no device is named)."""
    stmt = select(Campaign.id).where(col(Campaign.inspector_device_id).is_not(None))
    return stmt if device_id is None else stmt.where(Campaign.inspector_device_id != device_id)


@dataclass
class Progress:
    campaign_id: int
    status: str
    total: int
    counts: dict[str, int]
    by_hospital: dict[int, dict[str, int]] = field(default_factory=dict)
    verification_rate: float = 0.0
    seconds_to_complete: float | None = None
    created_at: datetime | None = None
    deadline_at: datetime | None = None
    # Inpatients checked whose admission is flagged ineligible (not insured on the admission date), per hospital:
    # the spot check covers eligibility as well as presence.
    ineligible_by_hospital: dict[int, int] = field(default_factory=dict)

    def ineligible(self, hospital_id: int | None = None) -> int:
        if hospital_id is None:
            return sum(self.ineligible_by_hospital.values())
        return self.ineligible_by_hospital.get(hospital_id, 0)

    @property
    def done(self) -> int:
        return self.total - self.counts.get(Verdict.PENDING.value, 0)


def progress(db: Session, *, campaign_id: int, user: UserAccount | None = None) -> Progress:
    """Counts per verdict overall and per hospital (one GROUP BY), verification rate, completion time.

    With a user: what that user may see, computed the same way for the API, the console and the CLI
    (hospital staff: their hospital's counts and rate only, and no unannounced check at all).
    """
    campaign = get_campaign(db, user=user, campaign_id=campaign_id) if user else db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign not found")
    stmt = select(CheckTask.hospital_id, CheckTask.verdict, func.count()).where(CheckTask.campaign_id == campaign_id)
    if user is not None and user.role == Role.HOSPITAL_STAFF:
        stmt = stmt.where(CheckTask.hospital_id == user.hospital_id)
    rows = db.exec(stmt.group_by(CheckTask.hospital_id, CheckTask.verdict))
    counts: dict[str, int] = {v.value: 0 for v in Verdict}
    by_hospital: dict[int, dict[str, int]] = {}
    for hospital_id, verdict, n in rows:
        key = Verdict(verdict).value
        counts[key] += n
        by_hospital.setdefault(int(hospital_id), {})[key] = n
    total = sum(counts.values())
    checkable = total - sum(counts[v.value] for v in EXCUSED_VERDICTS)
    seconds = (campaign.completed_at - campaign.created_at).total_seconds() if campaign.completed_at else None
    ineligible = (select(CheckTask.hospital_id, func.count(func.distinct(CheckTask.admission_id)))
                         .join(Flag, col(Flag.admission_id) == CheckTask.admission_id)
                         .where(CheckTask.campaign_id == campaign_id, Flag.kind == FlagKind.INELIGIBLE,
                                Flag.status != FlagStatus.DISMISSED)
                         .group_by(CheckTask.hospital_id))
    if user is not None and user.role == Role.HOSPITAL_STAFF:
        ineligible = ineligible.where(CheckTask.hospital_id == user.hospital_id)
    return Progress(campaign_id, campaign.status.value, total, counts, by_hospital,
                    counts[Verdict.VERIFIED.value] / checkable if checkable else 1.0, seconds,
                    campaign.created_at, campaign.deadline_at, {int(h): int(n) for h, n in db.exec(ineligible)})


def complete_if_done(db: Session, *, campaign_id: int) -> bool:
    """Marks a running campaign completed once no task is pending; returns True when it is completed."""
    campaign = db.get(Campaign, campaign_id)
    if campaign is None or campaign.status == CampaignStatus.COMPLETED:
        return campaign is not None
    pending = db.exec(select(func.count()).select_from(CheckTask).where(
        CheckTask.campaign_id == campaign_id, CheckTask.verdict == Verdict.PENDING)).one()
    if pending:
        return False
    campaign.status, campaign.completed_at = CampaignStatus.COMPLETED, utcnow()
    audit.record(db, actor="system", action="campaign.completed", object_type="campaign", object_id=campaign_id,
                 data={"tasks": campaign.task_count})
    db.commit()
    return True


def final_or_overdue() -> Any:
    return or_(col(CheckTask.verdict).in_(list(FINAL_VERDICTS)), CheckTask.verdict == Verdict.OVERDUE)


def mark_delivered(db: Session, *, task_ids: list[int]) -> None:
    """Notes that a device received these tasks (first delivery only)."""
    if task_ids:
        db.execute(update(CheckTask).where(col(CheckTask.id).in_(task_ids), col(CheckTask.delivered_at).is_(None))
                   .values(delivered_at=utcnow()))
        db.commit()


def mark_expired(db: Session, *, campaign_id: int, now: datetime) -> list[tuple[int, Verdict]]:
    """One campaign's past-deadline pending tasks, closed with the verdict policy's deadline rule."""
    expired = list(db.exec(select(CheckTask.id, CheckTask.delivered_at, CheckTask.admission_id, CheckTask.issued_at,
                                  CheckTask.deadline_at).where(
        CheckTask.campaign_id == campaign_id, CheckTask.verdict == Verdict.PENDING, CheckTask.deadline_at <= now)
        # PostgreSQL: the tasks are locked here; one an upload holds is skipped (its result is being stored,
        # and a failed upload leaves it to the next sweep), so the two never wait on each other.
        .order_by(col(CheckTask.id)).with_for_update(skip_locked=True)))
    leaves = leave_service.leaves_of(db, [row[2] for row in expired])
    planned = [(int(tid), policy.at_deadline(delivered=delivered is not None, on_leave=leave_service.covering_leave(
        leaves.get(admission_id, []), issued_at=issued_at, at=deadline_at) is not None))
        for tid, delivered, admission_id, issued_at, deadline_at in expired]
    # Conditional on the task still being pending when the row is written (PostgreSQL re-reads a row another
    # transaction locked; SQLite's writers are serialised): a result stored meanwhile wins, and only the rows
    # this statement changed are reported, so the sweep flags no task a result has answered.
    changed: set[int] = set()
    for verdict in {v for _, v in planned}:
        ids = [tid for tid, v in planned if v == verdict]
        for chunk in chunks(ids):
            changed.update(int(tid) for tid in db.execute(
                update(CheckTask).where(and_(col(CheckTask.id).in_(chunk), CheckTask.verdict == Verdict.PENDING))
                .values(verdict=verdict, verdict_at=now).returning(CheckTask.id)).scalars())
    return [(tid, v) for tid, v in planned if tid in changed]


def chunks(ids: list[int], size: int = 10_000) -> list[list[int]]:
    """Id lists cut to what one statement may bind (PostgreSQL takes at most 65,535 parameters)."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def unannounced_campaign_ids() -> Any:
    """Spot checks before their deadline: unannounced, so invisible to the hospitals they check."""
    return select(Campaign.id).where(Campaign.kind == CampaignKind.SPOT_CHECK, Campaign.deadline_at > utcnow())


def announced_only(stmt: Any, user: UserAccount, campaign_column: Any) -> Any:
    """The unannounced-check rule, the one place it is written: hospital staff see nothing (rows, counts,
    names) of a spot check before its deadline. `campaign_column` is the query's campaign id (a flag, a task
    or the campaign itself); rows of no campaign are not hidden by this rule."""
    if user.role != Role.HOSPITAL_STAFF:
        return stmt
    return stmt.where(or_(col(campaign_column).is_(None), col(campaign_column).not_in(unannounced_campaign_ids())))


def visible_campaigns(stmt: Any, user: UserAccount) -> Any:
    """Hospital staff see no campaign that is still an unannounced check."""
    return announced_only(stmt, user, Campaign.id)


def get_campaign(db: Session, *, user: UserAccount, campaign_id: int) -> Campaign:
    """The campaign, or 404 when it does not exist or is an unannounced check the user must not see."""
    campaign = db.exec(visible_campaigns(select(Campaign).where(Campaign.id == campaign_id), user)).first()
    if campaign is None:
        raise NotFound("campaign not found")
    return campaign


def scope_size(db: Session, *, hospital_ids: list[int]) -> int:
    """How many beds (current admissions) a check over these hospitals would create tasks for."""
    now = utcnow()
    return int(db.exec(select(func.count()).select_from(Admission).where(
        col(Admission.hospital_id).in_(hospital_ids), col(Admission.discharged_at).is_(None),
        Admission.admitted_at <= now)).one())
