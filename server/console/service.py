"""Read models of the console pages: dashboard, flag queue and flag detail, always within the user's scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from models.errors import NotFound
from models.verdicts import FlagKind, Verdict
from server.accounts.deps import check_hospital, scope
from server.accounts.tables import Role, UserAccount
from server.campaigns import service as campaign_service
from server.campaigns.tables import Campaign, CampaignStatus, CheckTask
from server.checks.tables import CheckResult
from server.console.actions import REVIEW_REASONS
from server.console.tables import Appeal, AppealAttachment
from server.db import utcnow
from server.devices.tables import Device
from server.flags import service as flag_service
from server.flags.tables import Flag, FlagStatus, Review
from server.hospitals.tables import Bed, Hospital, Ward
from server.persons.tables import FaceEmbedding, InsuredPerson
from server.regions.tables import Region, RegionLevel

OFFLINE_AFTER = timedelta(minutes=10)
PAGE_SIZE = 50


def hospital_names(db: Session, user: UserAccount) -> dict[int, str]:
    """Hospitals the user may see, id -> name."""
    rows = db.exec(scope(select(Hospital.id, Hospital.name), user, Hospital.id).order_by(col(Hospital.name)))
    return {int(i): n for i, n in rows}


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
    recent = list(db.exec(select(Campaign).order_by(col(Campaign.id).desc()).limit(10)))
    campaign = db.get(Campaign, campaign_id) if campaign_id else None
    if campaign_id and campaign is None:
        raise NotFound("campaign not found")
    if campaign is None:
        campaign = next((c for c in recent if c.status == CampaignStatus.RUNNING), recent[0] if recent else None)
    hospitals = hospital_names(db, user)
    progress = campaign_progress(db, user, campaign.id or 0) if campaign else None
    return Dashboard(campaign, progress, recent, offline_devices(db, user), hospitals)


def campaign_progress(db: Session, user: UserAccount, campaign_id: int) -> dict[str, Any]:
    """The progress API's numbers, restricted to the user's hospital for hospital staff."""
    p = campaign_service.progress(db, campaign_id=campaign_id)
    by_hospital, counts, rate = p.by_hospital, p.counts, p.verification_rate
    if user.role == Role.HOSPITAL_STAFF:
        by_hospital = {h: c for h, c in by_hospital.items() if h == user.hospital_id}
        own = by_hospital.get(user.hospital_id or 0, {})
        counts = {v.value: own.get(v.value, 0) for v in Verdict}
        checkable = sum(counts.values()) - counts[Verdict.EXEMPT.value]
        rate = counts[Verdict.VERIFIED.value] / checkable if checkable else 1.0
    total = sum(counts.values())
    return {"status": p.status, "total": total, "done": total - counts.get(Verdict.PENDING.value, 0),
            "counts": counts, "by_hospital": by_hospital, "verification_rate": rate,
            "seconds_to_complete": p.seconds_to_complete}


def offline_devices(db: Session, user: UserAccount, limit: int = 50) -> list[tuple[Device, str, str]]:
    """Active devices not heard from for OFFLINE_AFTER (or never), with hospital and ward names."""
    since = utcnow() - OFFLINE_AFTER
    stmt = (select(Device, Hospital.name, Ward.code).join(Hospital, col(Hospital.id) == Device.hospital_id)
            .join(Ward, col(Ward.id) == Device.ward_id)
            .where(col(Device.revoked_at).is_(None),
                   (col(Device.last_seen_at).is_(None)) | (col(Device.last_seen_at) < since))
            .order_by(col(Device.last_seen_at)).limit(limit))
    return [(d, h, w) for d, h, w in db.exec(scope(stmt, user, Device.hospital_id))]


@dataclass(frozen=True)
class FlagFilter:
    campaign_id: int | None = None
    hospital_id: int | None = None
    kind: FlagKind | None = None
    status: FlagStatus | None = None

    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items() if v is not None}


def flag_query(user: UserAccount, filters: FlagFilter) -> Any:
    """SELECT Flag within scope and filters; another hospital asked for by staff is 404."""
    if filters.hospital_id is not None:
        check_hospital(user, filters.hospital_id, "hospital")
    stmt = scope(select(Flag), user, Flag.hospital_id)
    for column, value in ((Flag.campaign_id, filters.campaign_id), (Flag.hospital_id, filters.hospital_id),
                          (Flag.kind, filters.kind), (Flag.status, filters.status)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


@dataclass
class FlagPage:
    total: int
    page: int
    pages: int
    rows: list[tuple[Flag, str]]


def flag_page(db: Session, user: UserAccount, filters: FlagFilter, *, page: int = 1) -> FlagPage:
    """One page of the queue, newest first, with hospital names."""
    stmt = flag_query(user, filters)
    total = int(db.exec(select(func.count()).select_from(stmt.subquery())).one())
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    ids = list(db.exec(stmt.with_only_columns(col(Flag.id)).order_by(col(Flag.id).desc())
                       .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
    rows = db.exec(select(Flag, Hospital.name).outerjoin(Hospital, col(Hospital.id) == Flag.hospital_id)
                   .where(col(Flag.id).in_(ids)).order_by(col(Flag.id).desc())) if ids else []
    return FlagPage(total, page, pages, [(f, h or "-") for f, h in rows])


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
    transitions: list[FlagStatus] = field(default_factory=list)
    can_appeal: bool = False

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
    allowed = [to for (frm, to), roles in flag_service.ALLOWED.items() if frm == flag.status and user.role in roles]
    view.transitions = [to for to in allowed if to != FlagStatus.APPEALED]
    view.can_appeal = FlagStatus.APPEALED in allowed and flag.hospital_id is not None
    return view


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
