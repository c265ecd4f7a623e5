"""Read models of the console pages: dashboard, flag queue and flag detail, always within the user's scope."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from models.verdicts import FlagKind, Verdict
from server.accounts.deps import scope
from server.accounts.tables import Role, UserAccount
from server.campaigns import service as campaign_service
from server.campaigns.tables import Campaign, CampaignStatus, CheckTask
from server.checks.tables import CheckResult
from server.console import people, timeline
from server.console import place as place_section
from server.console.actions import REVIEW_REASONS
from server.console.queue import FlagFilter, FlagPage, flag_page, flag_query  # noqa: F401  (used as service.*)
from server.db import utcnow
from server.devices import service as device_service
from server.devices.tables import Device
from server.flags import counts, workflow
from server.flags import service as flag_service
from server.flags.tables import Appeal, AppealAttachment, Flag, FlagStatus, Review
from server.hospitals.tables import Bed, Hospital, Ward
from server.persons.tables import FaceEmbedding, InsuredPerson
from server.regions.tables import Region, RegionLevel

OFFLINE_AFTER = timedelta(minutes=10)
NOT_ANSWERING_AFTER = timedelta(seconds=60)


def hospital_names(db: Session, user: UserAccount) -> dict[int, str]:
    """Hospitals the user may see, id -> name, in natural order (2 before 10)."""
    rows = db.exec(scope(select(Hospital.id, Hospital.name), user, Hospital.id))
    return {int(i): n for i, n in sorted(rows, key=lambda row: natural_key(row[1]))}


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Digits compare as numbers: 第2医院 before 第10医院."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


def county_names(db: Session) -> list[str]:
    return list(db.exec(select(Region.name).where(Region.level == RegionLevel.COUNTY).order_by(col(Region.name))))


@dataclass
class Dashboard:
    campaign: Campaign | None
    progress: dict[str, Any] | None
    recent: list[Campaign]
    offline: list[tuple[Device, str, str]]
    hospitals: dict[int, str]


def dashboard(db: Session, user: UserAccount, *, campaign_id: int | None = None) -> Dashboard:
    """The chosen (or newest running, else newest) campaign's progress, recent campaigns, offline devices."""
    recent = list(db.exec(campaign_service.visible_campaigns(select(Campaign), user)
                          .order_by(col(Campaign.id).desc()).limit(10)))
    campaign = campaign_service.get_campaign(db, user=user, campaign_id=campaign_id) if campaign_id else None
    if campaign is None:
        campaign = next((c for c in recent if c.status == CampaignStatus.RUNNING), recent[0] if recent else None)
    hospitals = hospital_names(db, user)
    progress = campaign_progress(db, user, campaign.id or 0) if campaign else None
    return Dashboard(campaign, progress, recent, offline_devices(db, user), hospitals)


def campaign_progress(db: Session, user: UserAccount, campaign_id: int) -> dict[str, Any]:
    """The progress API's numbers (one scoped function: campaigns/service.progress), with what the page adds."""
    p = campaign_service.progress(db, campaign_id=campaign_id, user=user)
    by_verdict = p.counts
    # Ended by the deadline sweep, not by every bed answering: say so instead of a completion time.
    timed_out = bool(p.seconds_to_complete is not None and p.created_at and p.deadline_at
                     and p.seconds_to_complete >= (p.deadline_at - p.created_at).total_seconds() - 1)
    silent = not_answering(db, user, campaign_id, p) if p.status == CampaignStatus.RUNNING.value else {}
    flags = counts.by_kind(db, user, [Flag.campaign_id == campaign_id])
    return {"status": p.status, "total": p.total, "done": p.done,
            "counts": by_verdict, "by_hospital": p.by_hospital, "verification_rate": p.verification_rate,
            "seconds_to_complete": p.seconds_to_complete, "timed_out": timed_out,
            "ineligible": p.ineligible(),
            # 超时未答 as every page counts it (server/flags/counts.py): a superseded overdue flag is not one.
            "unanswered": flags[FlagKind.OVERDUE.value].raised if FlagKind.OVERDUE.value in flags else 0,
            "flags": {kind.value: {"raised": flags[kind.value].raised, "open": flags[kind.value].open}
                      for kind in FlagKind if kind.value in flags},
            "created_at": p.created_at.isoformat() if p.created_at else None,
            "deadline_at": p.deadline_at.isoformat() if p.deadline_at else None,
            "not_answering": silent}


def not_answering(db: Session, user: UserAccount, campaign_id: int, p: campaign_service.Progress) -> dict[int, int]:
    """Hospital id -> tasks no device has fetched yet, once the devices had time to fetch them.

    A device long-polls and fetches a new task within seconds; nothing fetched after NOT_ANSWERING_AFTER (or
    a fifth of a short deadline) means the ward's device is off or offline, well before the deadline.
    """
    if p.created_at is None or p.deadline_at is None:
        return {}
    grace = min(NOT_ANSWERING_AFTER, (p.deadline_at - p.created_at) / 5)
    if utcnow() - p.created_at < grace:
        return {}
    stmt = (select(CheckTask.hospital_id, func.count()).where(
        CheckTask.campaign_id == campaign_id, CheckTask.verdict == Verdict.PENDING,
        col(CheckTask.delivered_at).is_(None)).group_by(CheckTask.hospital_id))
    return {int(h): int(n) for h, n in db.exec(scope(stmt, user, CheckTask.hospital_id))}


def offline_devices(db: Session, user: UserAccount, limit: int = 50) -> list[tuple[Device, str, str]]:
    """Active devices not heard from for OFFLINE_AFTER (or never), with hospital and ward names."""
    since = utcnow() - OFFLINE_AFTER
    stmt = (select(Device, Hospital.name, Ward.code).join(Hospital, col(Hospital.id) == Device.hospital_id)
            .join(Ward, col(Ward.id) == Device.ward_id)
            .where(col(Device.revoked_at).is_(None),
                   (col(Device.last_seen_at).is_(None)) | (col(Device.last_seen_at) < since))
            .order_by(col(Device.last_seen_at)).limit(limit))
    stmt = device_service.hospital_devices_only(scope(stmt, user, Device.hospital_id), user)
    return [(d, h, w) for d, h, w in db.exec(stmt)]


@dataclass
class FlagView:
    flag: Flag
    hospital: Hospital | None = None
    task: CheckTask | None = None
    result: CheckResult | None = None
    device: Device | None = None
    ward: Ward | None = None
    bed: Bed | None = None
    person: InsuredPerson | None = None
    has_enrolled_photo: bool = False
    reviews: list[Review] = field(default_factory=list)
    appeals: list[tuple[Appeal, list[AppealAttachment]]] = field(default_factory=list)
    transitions: list[workflow.Decision] = field(default_factory=list)  # what the review form offers
    can_appeal: bool = False
    named: list[people.Named] = field(default_factory=list)
    # The 1:N search ran and named nobody (no one under the identification threshold, or no clear winner).
    named_nobody: bool = False
    events: list[timeline.Event] = field(default_factory=list)
    appeal_deadline: datetime | None = None
    reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)  # decision -> reasons that fit it
    detail_items: list[tuple[str, Any]] = field(default_factory=list)
    awaiting_other_reviewer: bool = False
    place: place_section.PlaceView | None = None
    earlier_crop: bool = False            # a replay's earlier capture can be shown beside this one
    earlier_flag_id: int | None = None    # the flag raised on that earlier capture, if any
    related: list[Flag] = field(default_factory=list)  # other flags of the same bed in the same campaign

    @property
    def history(self) -> list[tuple[Review, str | None, str]]:
        """Each review with its reason split into a known reason's text key and the free comment."""
        rows = []
        for review in self.reviews:
            code, _, comment = review.reason.partition(": ")
            known = code in REVIEW_REASONS
            rows.append((review, f"reason_{code}" if known else None, comment if known else review.reason))
        return rows


def flag_view(db: Session, user: UserAccount, flag_id: int) -> FlagView:
    """Everything the detail page shows about one flag."""
    flag = flag_service.load_flag(db, user, flag_id)
    view = FlagView(flag, hospital=db.get(Hospital, flag.hospital_id) if flag.hospital_id else None)
    view.task = db.get(CheckTask, flag.task_id) if flag.task_id else None
    result_id = (view.task.result_id if view.task else None) or flag.details.get("result_id")
    view.result = db.get(CheckResult, result_id) if result_id else None
    view.device = db.get(Device, view.result.device_id) if view.result else None
    if view.task:
        view.ward, view.bed = db.get(Ward, view.task.ward_id), db.get(Bed, view.task.bed_id)
    view.person = db.get(InsuredPerson, flag.insured_person_id) if flag.insured_person_id else None
    view.has_enrolled_photo = enrolled_thumbnail(db, flag) is not None
    view.reviews = list(db.exec(select(Review).where(Review.flag_id == flag.id).order_by(col(Review.id))))
    appeals = list(db.exec(select(Appeal).where(Appeal.flag_id == flag.id).order_by(col(Appeal.id))))
    for appeal in appeals:
        files = db.exec(select(AppealAttachment).where(AppealAttachment.appeal_id == appeal.id)
                        .order_by(col(AppealAttachment.id)))
        view.appeals.append((appeal, list(files)))
    moves = workflow.available_moves(db, flag=flag, user=user)
    view.transitions = workflow.decisions(flag, moves)
    view.can_appeal = FlagStatus.APPEALED in moves and flag.hospital_id is not None
    view.awaiting_other_reviewer = (not moves and flag.status in (FlagStatus.FIRST_REVIEWED, FlagStatus.APPEALED)
                                    and user.username in workflow.excluded_deciders(db, flag))
    view.reasons = {d.value: tuple(r.value for r in workflow.decision_reasons(flag, d)) for d in view.transitions}
    view.named = people.named_in(db, user, flag)
    view.named_nobody = "naming" in flag.details and not view.named
    view.detail_items = detail_items(db, user, flag)
    view.place = place_section.place_view(db, flag, view.result)
    crop, view.earlier_flag_id = earlier_capture(db, user, flag)
    view.earlier_crop = crop is not None
    view.related = related_flags(db, user, flag)
    view.appeal_deadline = timeline.appeal_deadline(db, flag)
    keys = {rv.id or 0: key for rv, key, _ in view.history if key}
    comments = {rv.id or 0: comment for rv, _, comment in view.history}
    view.events = timeline.events(db, flag, task=view.task, result=view.result, reviews=view.reviews,
                                  appeals=[a for a, _ in view.appeals], reason_key=keys, comment=comments)
    return view


# Shown elsewhere on the page (distance, images, named persons) or internal ids no reader needs.
HIDDEN_DETAILS = frozenset({"recommendation",
                            "distance", "result_id", "device_id", "named", "naming", "evidence_sha256", "late", "funds",
                            "embedding_id", "other_embedding_id", "insured_person_id", "leave_id",
                            "pending_embedding_id", "face_review", "addition"})
HOSPITAL_DETAILS = frozenset({"other_hospital_id", "also_admitted_in_hospital_ids", "hospital_ids"})


def detail_items(db: Session, user: UserAccount, flag: Flag) -> list[tuple[str, Any]]:
    """The flag's recorded details a reader needs, hospital ids turned into names (numbers for staff)."""
    items: list[tuple[str, Any]] = []
    for key, value in flag.details.items():
        if key in HIDDEN_DETAILS or (flag.kind == FlagKind.PLACE_MISMATCH and key in place_section.PLACE_DETAILS):
            continue
        if key in HOSPITAL_DETAILS and user.role != Role.HOSPITAL_STAFF:
            ids = value if isinstance(value, list) else [value]
            value = [h.name if (h := db.get(Hospital, i or 0)) else i for i in ids]
        items.append((key, value))
    recommended = flag.details.get("recommendation")
    if isinstance(recommended, dict) and recommended.get("decision"):
        items.append(("recommendation", f"to_{recommended['decision']}"))
        items.append(("recommendation_reason", f"reason_{recommended.get('reason')}"))
    return items + _pending_face_items(flag) + _funds_items(flag)


def _pending_face_items(flag: Flag) -> list[tuple[str, Any]]:
    """Where a hospital's face replacement stands: pending until confirmed (server/persons/face_review.py)."""
    if "pending_embedding_id" not in flag.details:
        return []
    on = (flag.details.get("face_review") or {}).get("on", "pending")
    return [("new_face", f"new_face_{on}")]


def _funds_items(flag: Flag) -> list[tuple[str, Any]]:
    """Refused funds and deduction of a confirmed flag, with the basis the agreement gave (server/funds)."""
    from server.funds.money import format_yuan

    if getattr(flag, "refused_fen", None) is None:
        return []
    basis = flag.details.get("funds") or {}
    items: list[tuple[str, Any]] = [("refused", format_yuan(flag.refused_fen)),
                                    ("deduction", format_yuan(getattr(flag, "deduction_fen", None)))]
    if basis.get("counted"):
        items.append(("counted", f"counted_{basis['counted']}"))
    if basis.get("from") and basis.get("to"):
        items.append(("funds_period", [basis["from"], basis["to"]]))
    for key in ("days", "multiple"):
        if basis.get(key) is not None:
            items.append((f"funds_{key}", basis[key]))
    if basis.get("per_day_fen") is not None:
        items.append(("per_day", format_yuan(basis["per_day_fen"])))
    if basis.get("on"):
        items.append(("funds_on", f"funds_on_{basis['on']}"))
    return items


def earlier_capture(db: Session, user: UserAccount, flag: Flag) -> tuple[bytes | None, int | None]:
    """A replayed photo's earlier capture (its crop) and the flag raised on it, for a reader who may see the
    earlier task's hospital; (None, None) for other kinds."""
    earlier_id = flag.details.get("earlier_result_id") if flag.kind == FlagKind.REPLAYED_PHOTO else None
    earlier = db.get(CheckResult, int(earlier_id)) if isinstance(earlier_id, int) else None
    task = db.get(CheckTask, earlier.task_id) if earlier else None
    if earlier is None or task is None or (user.role == Role.HOSPITAL_STAFF and task.hospital_id != user.hospital_id):
        return None, None
    flag_id = db.exec(flag_service.scoped(select(Flag.id).where(Flag.task_id == task.id), user)
                      .order_by(col(Flag.id)).limit(1)).first()
    return earlier.face_crop_jpeg, flag_id


def related_flags(db: Session, user: UserAccount, flag: Flag, limit: int = 20) -> list[Flag]:
    """Other flags of the same admission (bed) in the same campaign: one bed's story is read together."""
    if flag.campaign_id is None or flag.admission_id is None:
        return []
    stmt = select(Flag).where(Flag.campaign_id == flag.campaign_id, Flag.admission_id == flag.admission_id,
                              Flag.id != flag.id)
    return list(db.exec(flag_service.scoped(stmt, user).order_by(col(Flag.id)).limit(limit)))


def enrolled_thumbnail(db: Session, flag: Flag) -> bytes | None:
    """The newest active enrolled thumbnail of the flag's insured person."""
    if flag.insured_person_id is None:
        return None
    return db.exec(select(FaceEmbedding.thumbnail_jpeg).where(
        FaceEmbedding.insured_person_id == flag.insured_person_id, FaceEmbedding.is_active == True,  # noqa: E712
        col(FaceEmbedding.thumbnail_jpeg).is_not(None)).order_by(col(FaceEmbedding.id).desc()).limit(1)).first()


def captured_crop(db: Session, flag: Flag) -> bytes | None:
    result_id = flag.details.get("result_id")
    if result_id is None and flag.task_id:
        task = db.get(CheckTask, flag.task_id)
        result_id = task.result_id if task else None
    result = db.get(CheckResult, result_id) if result_id else None
    return result.face_crop_jpeg if result else None
