"""Leave API: hospital staff register approved leaves of their inpatients and record returns."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from server.accounts.deps import CurrentUser, RequireRoles
from server.accounts.tables import Role
from server.admissions import leave as service
from server.admissions.tables import Leave
from server.db import Db

router = APIRouter(prefix="/api/v1/leaves", tags=["leaves"])
LEAVE_WRITERS = RequireRoles(Role.ADMIN, Role.SUPERVISOR, Role.HOSPITAL_STAFF)


class LeaveCreate(BaseModel):
    admission_id: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=200)
    approved_by_doctor: str = Field(min_length=1, max_length=80, description="Attending doctor who approved")
    approved_by_insurance_officer: str = Field(min_length=1, max_length=80,
                                               description="Insurance office (医保科) officer who approved")


class LeaveRead(BaseModel):
    id: int
    admission_id: int
    hospital_id: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    approved_by_doctor: str
    approved_by_insurance_officer: str
    created_by: str
    created_at: datetime
    returned_at: datetime | None
    names_cleaned: list[str] = Field(default_factory=list, description="Characters removed from the approvers' "
                                     "names (invisible ones), e.g. 'U+200B ZERO WIDTH SPACE'")


def read(leave: Leave) -> LeaveRead:
    return LeaveRead.model_validate(leave, from_attributes=True)


@router.post("", response_model=LeaveRead, status_code=201)
def register_leave(body: LeaveCreate, user: CurrentUser, db: Db, request: Request) -> LeaveRead:
    LEAVE_WRITERS(user)
    leave = service.register_leave(db, actor=user, **body.model_dump())
    doctor, officer = service.approvers(body.approved_by_doctor, body.approved_by_insurance_officer)
    return read(leave).model_copy(update={"names_cleaned": [*doctor.removed, *officer.removed]})


@router.post("/{leave_id}/return", response_model=LeaveRead)
def record_return(leave_id: int, user: CurrentUser, db: Db, request: Request) -> LeaveRead:
    LEAVE_WRITERS(user)
    leave = service.record_return(db, actor=user, leave_id=leave_id)
    return read(leave)


@router.get("", response_model=list[LeaveRead])
def list_leaves(user: CurrentUser, db: Db, hospital_id: int | None = None,
                limit: int = Query(default=200, ge=1, le=1000)) -> list[LeaveRead]:
    return [read(leave) for leave in service.list_leaves(db, user, hospital_id=hospital_id, limit=limit)]
