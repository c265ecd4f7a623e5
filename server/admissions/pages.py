"""Console pages of leaves: the hospital registers an approved leave and records the return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import col, select

from models.errors import InvalidInput, NotFound
from server.accounts.deps import ANY_USER, CurrentUser
from server.accounts.tables import Role
from server.admissions import leave as service
from server.admissions.leave_routes import LEAVE_WRITERS
from server.admissions.tables import Admission
from server.console.service import hospital_names
from server.console.web import PREFIX, PageRoute, redirect, render, verify_csrf
from server.db import Db
from server.localtime import LOCAL_TZ

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(ANY_USER)])
Csrf = Depends(verify_csrf)


def _local(value: str, name: str) -> datetime:
    """A datetime-local form value, read in the bureau's time zone."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise InvalidInput(f"{name} is not a date and time") from e
    return parsed.replace(tzinfo=LOCAL_TZ) if parsed.tzinfo is None else parsed


def _local_text(at: datetime | None) -> str:
    return at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if at else ""


@router.get("/leaves", response_class=HTMLResponse, dependencies=[Depends(LEAVE_WRITERS)])
def leaves(request: Request, user: CurrentUser, db: Db, cleaned: int = 0) -> Response:
    rows = service.list_leaves(db, user)
    admissions = {a.id: a for a in db.exec(select(Admission).where(
        col(Admission.id).in_([r.admission_id for r in rows])))} if rows else {}
    volume = service.leave_volume(db, user, today=datetime.now(LOCAL_TZ).date())
    return render(request, "leaves.html", {"leaves": rows, "admissions": admissions, "local": _local_text,
                                           "hospitals": hospital_names(db, user), "volume": volume,
                                           "cleaned": max(0, min(cleaned, 99)),
                                           "staff": user.role == Role.HOSPITAL_STAFF}, user=user)


@router.post("/leaves", dependencies=[Depends(LEAVE_WRITERS), Csrf])
def register_leave(request: Request, user: CurrentUser, db: Db,
                   his_admission_no: Annotated[str, Form(max_length=60)],
                   starts_at: Annotated[str, Form()], ends_at: Annotated[str, Form()],
                   reason: Annotated[str, Form(max_length=200)],
                   approved_by_doctor: Annotated[str, Form(max_length=80)],
                   approved_by_insurance_officer: Annotated[str, Form(max_length=80)],
                   hospital_id: Annotated[str, Form()] = "") -> Response:
    hospital = user.hospital_id if user.role == Role.HOSPITAL_STAFF else (int(hospital_id) if hospital_id.isdigit()
                                                                          else None)
    admission = db.exec(select(Admission).where(Admission.hospital_id == hospital,
                                                Admission.his_admission_no == his_admission_no.strip())).first()
    if admission is None:
        raise NotFound("no such admission in this hospital")
    service.register_leave(db, actor=user, admission_id=admission.id or 0,
                           starts_at=_local(starts_at, "starts_at"), ends_at=_local(ends_at, "ends_at"),
                           reason=reason, approved_by_doctor=approved_by_doctor,
                           approved_by_insurance_officer=approved_by_insurance_officer)
    doctor, officer = service.approvers(approved_by_doctor, approved_by_insurance_officer)
    removed = len(doctor.removed) + len(officer.removed)
    return redirect(f"{PREFIX}/leaves" + (f"?cleaned={removed}" if removed else ""))


@router.post("/leaves/{leave_id}/return", dependencies=[Depends(LEAVE_WRITERS), Csrf])
def record_return(request: Request, leave_id: int, user: CurrentUser, db: Db) -> Response:
    service.record_return(db, actor=user, leave_id=leave_id)
    return redirect(f"{PREFIX}/leaves")
