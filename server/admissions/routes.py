"""Roster import API (HIS sync)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, UploadFile
from pydantic import BaseModel

from models.errors import InvalidInput, PayloadTooLarge
from server.accounts.deps import CurrentUser
from server.accounts.tables import Role
from server.admissions import roster
from server.db import Db
from server.persons import registry
from server.tabular import read_csv

router = APIRouter(prefix="/api/v1/roster", tags=["roster"])
registry_router = APIRouter(prefix="/api/v1/registry", tags=["registry"])


class RejectedRow(BaseModel):
    line: int
    code: str
    message: str


class ImportReportRead(BaseModel):
    created: int
    updated: int
    unchanged: int
    discharged: int
    transferred: int
    ineligible: int = 0
    encoding: str
    duplicate_admission_flags: int
    registry_mismatches: int = 0
    rejected: list[RejectedRow]
    cleaned: list[RejectedRow] = []


@router.post("/import", response_model=ImportReportRead)
def import_roster(file: UploadFile, user: CurrentUser, db: Db, request: Request,
                  encoding: str | None = Query(default=None, description="e.g. gb18030; default: detected"),
                  create_beds: bool = Query(default=False, description="Register unknown wards and beds")
                  ) -> ImportReportRead:
    """Hospital staff import their own hospital's roster; administrators and supervisors any.

    A plain `def`: the import's database work runs on a worker thread, never on the event loop that
    answers every device's long-poll and upload meanwhile.
    """
    from server.accounts.deps import RequireRoles

    RequireRoles(Role.ADMIN, Role.SUPERVISOR, Role.HOSPITAL_STAFF)(user)
    data = file.file.read(request.app.state.settings.max_body_bytes + 1)
    if len(data) > request.app.state.settings.max_body_bytes:
        raise PayloadTooLarge()
    if not data:
        raise InvalidInput("the roster file is empty")
    rows = roster.parse_rows(data, file.filename or "", encoding=encoding)
    only = user.hospital_id if user.role == Role.HOSPITAL_STAFF else None
    report = roster.import_roster(db, rows=rows, actor=f"user:{user.id}", only_hospital_id=only,
                                  create_beds=create_beds)
    return ImportReportRead(created=report.created, updated=report.updated, unchanged=report.unchanged,
                            discharged=report.discharged, transferred=report.transferred,
                            ineligible=report.ineligible,
                            encoding=report.encoding, duplicate_admission_flags=report.duplicate_admission_flags,
                            registry_mismatches=report.registry_mismatches,
                            rejected=[RejectedRow(line=r.line, code=r.code, message=r.message)
                                      for r in report.rejected],
                            cleaned=[RejectedRow(line=r.line, code=r.code, message=r.message)
                                     for r in report.cleaned])


class RegistryReportRead(BaseModel):
    created: int
    updated: int
    unchanged: int
    ineligible: int
    encoding: str
    rejected: list[RejectedRow]


def _upload(file: UploadFile, request: Request) -> bytes:
    data = file.file.read(request.app.state.settings.max_body_bytes + 1)
    if len(data) > request.app.state.settings.max_body_bytes:
        raise PayloadTooLarge()
    if not data:
        raise InvalidInput("the file is empty")
    return data


@registry_router.post("/import", response_model=RegistryReportRead)
def import_registry(file: UploadFile, user: CurrentUser, db: Db, request: Request,
                    encoding: str | None = Query(default=None, description="e.g. gb18030; default: detected")
                    ) -> RegistryReportRead:
    """The bureau's insurance registry feed (administrators and supervisors): the only writer of the registry."""
    from server.accounts.deps import RequireRoles

    RequireRoles(Role.ADMIN, Role.SUPERVISOR)(user)
    rows = read_csv(_upload(file, request), required=registry.REQUIRED, encoding=encoding, what="registry CSV")
    report = registry.import_registry(db, rows=rows, actor=f"user:{user.id}")
    return RegistryReportRead(created=report.created, updated=report.updated, unchanged=report.unchanged,
                              ineligible=report.ineligible, encoding=report.encoding,
                              rejected=[RejectedRow(line=r.line, code=r.code, message=r.message)
                                        for r in report.rejected])
