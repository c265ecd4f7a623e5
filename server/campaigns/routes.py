"""Campaign API: launch a spot check, watch its progress, list its tasks."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import col, func, select

from models.verdicts import Verdict
from server.accounts.deps import CurrentUser, check_hospital, scope
from server.campaigns import service
from server.campaigns.tables import Campaign, CheckTask
from server.db import Db

router = APIRouter(prefix="/api/v1/campaigns", tags=["campaigns"])


class SpotCheckCreate(BaseModel):
    county: str | None = None
    hospitals: list[str] | None = Field(default=None, description="Hospital ids or codes")
    deadline_s: int = Field(default=1200, gt=0, le=7 * 24 * 3600)


class CampaignRead(BaseModel):
    id: int
    kind: str
    status: str
    created_at: datetime
    deadline_at: datetime
    completed_at: datetime | None
    task_count: int


class ProgressRead(BaseModel):
    campaign_id: int
    status: str
    total: int
    done: int
    counts: dict[str, int]
    by_hospital: dict[int, dict[str, int]]
    verification_rate: float
    seconds_to_complete: float | None
    ineligible: int = 0  # checked inpatients not insured on their admission date (flagged at import)


class TaskRow(BaseModel):
    id: int
    hospital_id: int
    ward_id: int
    bed_id: int
    admission_id: int
    verdict: Verdict
    late: bool
    deadline_at: datetime


class TaskPage(BaseModel):
    total: int
    items: list[TaskRow]


def _read(c: Campaign) -> CampaignRead:
    return CampaignRead(id=c.id or 0, kind=c.kind.value, status=c.status.value, created_at=c.created_at,
                        deadline_at=c.deadline_at, completed_at=c.completed_at, task_count=c.task_count)


@router.post("", response_model=CampaignRead, status_code=201)
def launch_spot_check(body: SpotCheckCreate, user: CurrentUser, db: Db, request: Request) -> CampaignRead:
    from server.accounts.deps import SUPERVISORS

    SUPERVISORS(user)
    ids = service.resolve_scope(db, county=body.county, hospitals=body.hospitals)
    campaign = service.create_campaign(db, hospital_ids=ids, deadline_s=body.deadline_s, actor=f"user:{user.id}",
                                       scope={"county": body.county, "hospitals": body.hospitals})
    return _read(campaign)


@router.get("", response_model=list[CampaignRead])
def list_campaigns(user: CurrentUser, db: Db, limit: int = Query(default=50, ge=1, le=500)) -> list[CampaignRead]:
    stmt = service.visible_campaigns(select(Campaign), user)
    return [_read(c) for c in db.exec(stmt.order_by(col(Campaign.id).desc()).limit(limit))]


@router.get("/{campaign_id}", response_model=CampaignRead)
def get_campaign(campaign_id: int, user: CurrentUser, db: Db) -> CampaignRead:
    return _read(service.get_campaign(db, user=user, campaign_id=campaign_id))


@router.get("/{campaign_id}/progress", response_model=ProgressRead)
def campaign_progress(campaign_id: int, user: CurrentUser, db: Db) -> ProgressRead:
    p = service.progress(db, campaign_id=campaign_id, user=user)
    return ProgressRead(campaign_id=p.campaign_id, status=p.status, total=p.total, done=p.done, counts=p.counts,
                        by_hospital=p.by_hospital, verification_rate=p.verification_rate,
                        seconds_to_complete=p.seconds_to_complete, ineligible=p.ineligible())


@router.get("/{campaign_id}/tasks", response_model=TaskPage)
def campaign_tasks(campaign_id: int, user: CurrentUser, db: Db, verdict: Verdict | None = None,
                   hospital_id: int | None = None, ward_id: int | None = None,
                   offset: int = Query(default=0, ge=0), limit: int = Query(default=100, ge=1, le=1000)) -> TaskPage:
    service.get_campaign(db, user=user, campaign_id=campaign_id)
    if hospital_id is not None:
        check_hospital(user, hospital_id, "hospital")
    stmt = scope(select(CheckTask).where(CheckTask.campaign_id == campaign_id), user, CheckTask.hospital_id)
    for column, value in ((CheckTask.verdict, verdict), (CheckTask.hospital_id, hospital_id),
                          (CheckTask.ward_id, ward_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    total = db.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = db.exec(stmt.order_by(col(CheckTask.id)).offset(offset).limit(limit))
    return TaskPage(total=total, items=[TaskRow(id=t.id or 0, hospital_id=t.hospital_id, ward_id=t.ward_id,
                                                bed_id=t.bed_id, admission_id=t.admission_id, verdict=t.verdict,
                                                late=t.late, deadline_at=t.deadline_at) for t in rows])
