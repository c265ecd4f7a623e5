"""Bed references a bureau user approves (references the hospital cannot plant), and the beds still to set up.

A reference frame taken by a hospital's device waits, inactive, until a bureau user has seen it beside who took
it and when (server/places/service.py); this page lists them, oldest first, with approve and reject. The beds
of current admissions without an approved reference are the place check's setup tasks, listed once per ward
here and counted on the dashboard, instead of a place_mismatch flag on every capture there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from models.errors import InvalidInput, NotFound
from server.accounts.deps import REVIEWERS, CurrentUser
from server.accounts.tables import Role, UserAccount
from server.console.web import PREFIX, PageRoute, redirect, render, verify_csrf
from server.db import Db
from server.devices.tables import Device
from server.hospitals.tables import Bed, Hospital, Ward
from server.places import service as places
from server.places.tables import BedReference

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(REVIEWERS)])
PRIVATE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@dataclass(frozen=True)
class PendingRow:
    reference: BedReference
    hospital: str
    ward: str
    bed: str
    taken_by: str  # the device's name and number, or who else made it


@dataclass(frozen=True)
class WardSetup:
    ward_id: int
    hospital: str
    ward: str
    beds: list[str]


@dataclass(frozen=True)
class SetupSummary:
    beds: int
    wards: int
    can_review: bool


def _taken_by(db: Session, created_by: str) -> str:
    kind, _, number = created_by.partition(":")
    if kind == "device" and number.isdigit() and (device := db.get(Device, int(number))) is not None:
        return f"{device.name} #{device.id}" if device.name else f"#{device.id}"
    return created_by


def pending_rows(db: Session) -> list[PendingRow]:
    rows = []
    for reference in places.pending_references(db):
        bed, ward, hospital = db.get(Bed, reference.bed_id), db.get(Ward, reference.ward_id), \
            db.get(Hospital, reference.hospital_id)
        rows.append(PendingRow(reference, hospital.name if hospital else "", (ward.name or ward.code) if ward else "",
                               bed.label if bed else "", _taken_by(db, reference.created_by)))
    return rows


def setup_by_ward(db: Session, user: UserAccount) -> list[WardSetup]:
    """The beds without an approved reference, one entry per ward (a hospital's staff see their own)."""
    hospital_id = user.hospital_id if user.role == Role.HOSPITAL_STAFF else None
    wards: dict[int, WardSetup] = {}
    for bed, ward, hospital in places.beds_without_reference(db, hospital_id=hospital_id):
        entry = wards.setdefault(ward.id or 0, WardSetup(ward.id or 0, hospital.name, ward.name or ward.code, []))
        entry.beds.append(bed.label)
    return list(wards.values())


def setup_summary(db: Session, user: UserAccount) -> SetupSummary:
    """What the dashboard shows once: how many occupied beds in how many wards still need a reference."""
    wards = setup_by_ward(db, user)
    return SetupSummary(sum(len(w.beds) for w in wards), len(wards), user.role != Role.HOSPITAL_STAFF)


@router.get("/references", response_class=HTMLResponse)
def references_page(request: Request, user: CurrentUser, db: Db, done: str = "") -> Response:
    return render(request, "references.html", {"pending": pending_rows(db), "setup": setup_by_ward(db, user),
                                               "done": done if done in ("approved", "rejected") else ""}, user=user)


@router.get("/references/{reference_id}/frame.jpg")
def reference_frame(reference_id: int, user: CurrentUser, db: Db) -> Response:
    reference = db.get(BedReference, reference_id)
    if reference is None:
        raise NotFound("reference not found")
    return Response(reference.scene_jpeg, media_type="image/jpeg", headers=PRIVATE)


@router.post("/references/{reference_id}/decision", dependencies=[Depends(verify_csrf)])
def decide(reference_id: int, user: CurrentUser, db: Db, decision: Annotated[str, Form()] = "",
           note: Annotated[str, Form(max_length=200)] = "") -> Response:
    approve = decision == "approve"
    if not approve and decision != "reject":
        raise InvalidInput("choose approve or reject", text_key="err_unknown_value")
    places.decide_reference(db, reference_id=reference_id, approve=approve, actor=f"user:{user.id}", note=note)
    return redirect(f"{PREFIX}/references?done={'approved' if approve else 'rejected'}")
