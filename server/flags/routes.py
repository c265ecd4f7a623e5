"""Flag queue API: filters, pagination, detail, review transitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import col, func, select

from models.verdicts import FlagKind
from server.accounts.deps import CurrentUser, check_hospital, scope
from server.db import Db
from server.flags import service
from server.flags.tables import Flag, FlagStatus

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
    to: FlagStatus
    reason: str = Field(min_length=1, max_length=500)


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
    stmt = scope(select(Flag), user, Flag.hospital_id)
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
def transition_flag(flag_id: int, body: TransitionCreate, user: CurrentUser, db: Db, request: Request) -> FlagRead:
    flag = service.load_flag(db, user, flag_id)
    changed = service.transition(db, flag=flag, to=body.to, actor=user, reason=body.reason)
    return _read(changed)
