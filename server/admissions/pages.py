"""Console pages of leaves: the hospital registers an approved leave and records the return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from models.errors import BedcheckError, InvalidInput, NotFound
from server.accounts.deps import ANY_USER, CurrentUser
from server.accounts.tables import Role, UserAccount
from server.admissions import leave as service
from server.admissions.leave_routes import LEAVE_WRITERS
from server.admissions.tables import Admission, Leave
from server.console.service import hospital_names
from server.console.web import PREFIX, PageRoute, error_text, redirect, render, verify_csrf
from server.db import Db
from server.hospitals.tables import Bed, Ward
from server.localtime import LOCAL_TZ
from server.persons.tables import InsuredPerson

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


@dataclass(frozen=True)
class LeaveRow:
    leave: Leave
    admission_no: str
    patient: str
    ward_bed: str


def _rows(db: Session, user: UserAccount, q: str) -> list[LeaveRow]:
    """The newest leaves in scope with the patient's name, ward and bed; `q` matches name or 住院号."""
    leaves = service.list_leaves(db, user)
    ids = [r.admission_id for r in leaves]
    found = {a.id: (a.his_admission_no, p or "", f"{w or ''} · {b or ''}") for a, p, w, b in db.exec(
        select(Admission, InsuredPerson.name, Ward.name, Bed.label).where(col(Admission.id).in_(ids))
        .outerjoin(InsuredPerson, col(InsuredPerson.id) == Admission.insured_person_id)
        .outerjoin(Ward, col(Ward.id) == Admission.ward_id).outerjoin(Bed, col(Bed.id) == Admission.bed_id))} \
        if ids else {}
    rows = [LeaveRow(leave, *found.get(leave.admission_id, ("", "", ""))) for leave in leaves]
    q = q.strip()
    return [r for r in rows if q in r.patient or q in r.admission_no] if q else rows


def _page(request: Request, user: UserAccount, db: Session, *, q: str = "", cleaned: int = 0,
          form: dict[str, str] | None = None, error: str = "", status_code: int = 200) -> Response:
    volume = service.leave_volume(db, user, today=datetime.now(LOCAL_TZ).date())
    staff = user.role == Role.HOSPITAL_STAFF
    return render(request, "leaves.html", {"rows": _rows(db, user, q), "q": q, "local": _local_text,
                                           "hospitals": hospital_names(db, user), "volume": volume,
                                           "cleaned": max(0, min(cleaned, 99)), "staff": staff,
                                           # The ward records a return: the hospital's staff, not the bureau.
                                           "records_returns": staff, "form": form or {}, "error": error},
                  user=user, status_code=status_code)


@router.get("/leaves", response_class=HTMLResponse, dependencies=[Depends(LEAVE_WRITERS)])
def leaves(request: Request, user: CurrentUser, db: Db, cleaned: int = 0, q: str = "") -> Response:
    return _page(request, user, db, q=q[:80], cleaned=cleaned)


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
    form = {"hospital_id": hospital_id, "his_admission_no": his_admission_no, "starts_at": starts_at,
            "ends_at": ends_at, "reason": reason, "approved_by_doctor": approved_by_doctor,
            "approved_by_insurance_officer": approved_by_insurance_officer}
    try:
        admission = db.exec(select(Admission).where(Admission.hospital_id == hospital,
                                                    Admission.his_admission_no == his_admission_no.strip())).first()
        if admission is None:
            raise NotFound("no such admission in this hospital", text_key="err_no_such_admission")
        service.register_leave(db, actor=user, admission_id=admission.id or 0,
                               starts_at=_local(starts_at, "starts_at"), ends_at=_local(ends_at, "ends_at"),
                               reason=reason, approved_by_doctor=approved_by_doctor,
                               approved_by_insurance_officer=approved_by_insurance_officer)
    except BedcheckError as e:
        if e.http_status >= 500 or e.http_status in (401, 403):
            raise
        db.rollback()  # the form comes back with what was typed and the reason beside it
        return _page(request, user, db, form=form, error=error_text(request, e), status_code=422)
    doctor, officer = service.approvers(approved_by_doctor, approved_by_insurance_officer)
    removed = len(doctor.removed) + len(officer.removed)
    return redirect(f"{PREFIX}/leaves" + (f"?cleaned={removed}" if removed else ""))


@router.post("/leaves/{leave_id}/return", dependencies=[Depends(LEAVE_WRITERS), Csrf])
def record_return(request: Request, leave_id: int, user: CurrentUser, db: Db) -> Response:
    service.record_return(db, actor=user, leave_id=leave_id)
    return redirect(f"{PREFIX}/leaves")
