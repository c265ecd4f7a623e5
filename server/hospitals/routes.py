"""Bed registry API: register wards and beds from a CSV, list a hospital's beds."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, UploadFile
from pydantic import BaseModel

from models.errors import InvalidInput, PayloadTooLarge
from server.accounts.deps import CurrentUser, RequireRoles, check_hospital
from server.accounts.tables import Role
from server.admissions.routes import RejectedRow
from server.db import Db
from server.hospitals import registry

router = APIRouter(prefix="/api/v1/beds", tags=["beds"])
REGISTRARS = RequireRoles(Role.ADMIN, Role.SUPERVISOR, Role.HOSPITAL_STAFF)


class RegistryReportRead(BaseModel):
    wards_created: int
    beds_created: int
    unchanged: int
    encoding: str
    rejected: list[RejectedRow]


class BedRead(BaseModel):
    ward_code: str
    ward_name: str
    bed_id: int
    bed_label: str


@router.post("/import", response_model=RegistryReportRead)
def import_beds(file: UploadFile, user: CurrentUser, db: Db, request: Request,
                encoding: str | None = Query(default=None, description="e.g. gb18030; default: detected")
                ) -> RegistryReportRead:
    """Hospital staff register their own hospital's beds; administrators and supervisors any."""
    REGISTRARS(user)
    data = file.file.read(request.app.state.settings.max_body_bytes + 1)
    if len(data) > request.app.state.settings.max_body_bytes:
        raise PayloadTooLarge()
    if not data:
        raise InvalidInput("the bed registry file is empty")
    only = user.hospital_id if user.role == Role.HOSPITAL_STAFF else None
    report = registry.import_beds(db, rows=registry.parse_beds(data, encoding=encoding), actor=f"user:{user.id}",
                                  only_hospital_id=only)
    return RegistryReportRead(wards_created=report.wards_created, beds_created=report.beds_created,
                              unchanged=report.unchanged, encoding=report.encoding,
                              rejected=[RejectedRow(line=r.line, code=r.code, message=r.message)
                                        for r in report.rejected])


@router.get("", response_model=list[BedRead])
def list_beds(hospital_id: int, user: CurrentUser, db: Db) -> list[BedRead]:
    check_hospital(user, hospital_id, "hospital")
    return [BedRead(ward_code=w.code, ward_name=w.name, bed_id=b.id or 0, bed_label=b.label)
            for w, b in registry.list_beds(db, hospital_id=hospital_id)]
