"""Flag queue API: filters, pagination, detail, review transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, Field
from sqlmodel import col, func, select

from models.verdicts import FlagKind
from server.accounts.deps import CurrentUser, check_hospital
from server.db import Db
from server.flags import appeals, service, workflow
from server.flags.tables import AppealAttachment, Flag, FlagStatus
from server.flags.workflow import ReviewReason

router = APIRouter(prefix="/api/v1/flags", tags=["flags"])


class FlagRead(BaseModel):
    id: int
    kind: FlagKind
    status: FlagStatus
    hospital_id: int | None
    campaign_id: int | None
    task_id: int | None
    admission_id: int | None
    details: dict[str, Any]
    created_at: datetime
    refused_fen: int | None = None
    deduction_fen: int | None = None


class FlagPage(BaseModel):
    total: int
    items: list[FlagRead]


class TransitionCreate(BaseModel):
    """A review decision: a reason from the list (`ReviewReason`), a comment (required for 'other')."""

    # First review: recommend_confirm | recommend_dismiss (建议确认 / 建议排除); final review: confirmed | dismissed.
    to: workflow.Recommendation | FlagStatus
    reason: ReviewReason
    comment: str = Field(default="", max_length=400)


class AppealRead(BaseModel):
    id: int
    flag_id: int
    statement: str
    created_by: str
    created_at: datetime
    attachments: list[str] = Field(description="sha256 of each attachment")
    flag_status: FlagStatus


def _read(f: Flag) -> FlagRead:
    return FlagRead(id=f.id or 0, kind=f.kind, status=f.status, hospital_id=f.hospital_id, campaign_id=f.campaign_id,
                    task_id=f.task_id, admission_id=f.admission_id, details=f.details, created_at=f.created_at,
                    refused_fen=f.refused_fen, deduction_fen=f.deduction_fen)


@router.get("", response_model=FlagPage)
def list_flags(user: CurrentUser, db: Db, campaign_id: int | None = None, hospital_id: int | None = None,
               kind: FlagKind | None = None, status: FlagStatus | None = None,
               offset: int = Query(default=0, ge=0), limit: int = Query(default=50, ge=1, le=500)) -> FlagPage:
    if hospital_id is not None:
        check_hospital(user, hospital_id, "hospital")
    stmt = service.scoped(select(Flag), user)
    for column, value in ((Flag.campaign_id, campaign_id), (Flag.hospital_id, hospital_id), (Flag.kind, kind),
                          (Flag.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    total = db.exec(select(func.count()).select_from(stmt.subquery())).one()
    rows = db.exec(stmt.order_by(col(Flag.id).desc()).offset(offset).limit(limit))
    return FlagPage(total=total, items=[_read(f) for f in rows])


@router.get("/{flag_id}", response_model=FlagRead)
def get_flag(flag_id: int, user: CurrentUser, db: Db) -> FlagRead:
    return _read(service.load_flag(db, user, flag_id))


@router.post("/{flag_id}/transition", response_model=FlagRead)
def transition_flag(flag_id: int, body: TransitionCreate, user: CurrentUser, db: Db) -> FlagRead:
    """First or final review through the workflow's table (an appeal: POST .../appeals)."""
    flag = service.load_flag(db, user, flag_id)
    return _read(workflow.review(db, flag=flag, to=body.to, actor=user, reason=body.reason, comment=body.comment))


@router.post("/{flag_id}/appeals", response_model=AppealRead, status_code=201)
def file_appeal(flag_id: int, user: CurrentUser, db: Db, statement: Annotated[str, Form(max_length=4000)],
                attachments: Annotated[list[UploadFile] | None, File()] = None) -> AppealRead:
    """A hospital's appeal with its statement and attachments: the same Appeal record as the console's."""
    uploads = [appeals.Upload(f.filename or "", f.file.read(appeals.MAX_ATTACHMENT_BYTES + 1))
               for f in attachments or []]
    flag = service.load_flag(db, user, flag_id)
    appeal = appeals.file_appeal(db, flag=flag, actor=user, statement=statement, uploads=uploads)
    files = db.exec(select(AppealAttachment.sha256).where(AppealAttachment.appeal_id == appeal.id)
                    .order_by(col(AppealAttachment.id)))
    return AppealRead(id=appeal.id or 0, flag_id=appeal.flag_id, statement=appeal.statement,
                      created_by=appeal.created_by, created_at=appeal.created_at, attachments=list(files),
                      flag_status=flag.status)
