"""Files behind the console: face images, appeal attachments, exports and evidence packages, all in scope."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlmodel import Session

from models.errors import NotFound
from server.accounts.deps import ANY_USER, CurrentUser
from server.accounts.tables import UserAccount
from server.audit import service as audit
from server.console import exports, people, place, service
from server.console.pages import ExportFilters
from server.console.web import PREFIX, PageRoute, formatter
from server.db import Db, utcnow
from server.flags import service as flag_service
from server.flags.tables import Appeal, AppealAttachment

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(ANY_USER)])
Format = Literal["csv", "xlsx"]
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "zip": "application/zip"}
# Face images and evidence are personal data: no shared or browser cache keeps them.
PRIVATE = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


def _download(content: bytes, media_type: str, filename: str) -> Response:
    disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
    return Response(content, media_type=media_type, headers={**PRIVATE, "content-disposition": disposition})


def _image(content: bytes | None) -> Response:
    if content is None:
        raise NotFound("no image")
    # Crops are JPEG from devices; PNG crops (synthetic evidence in the demo) are said to be PNG.
    media_type = "image/png" if content.startswith(b"\x89PNG") else "image/jpeg"
    return Response(content, media_type=media_type, headers=PRIVATE)


def _audit(request: Request, db: Session, user: UserAccount, action: str, object_type: str, object_id: int | str,
           **data: object) -> None:
    audit.record(db, actor=f"user:{user.id}", action=action, object_type=object_type, object_id=object_id,
                 data=data)
    db.commit()


@router.get("/flags/{flag_id}/enrolled.jpg")
def enrolled_photo(flag_id: int, user: CurrentUser, db: Db) -> Response:
    return _image(service.enrolled_thumbnail(db, flag_service.load_flag(db, user, flag_id)))


@router.get("/flags/{flag_id}/crop.jpg")
def captured_crop(flag_id: int, user: CurrentUser, db: Db) -> Response:
    return _image(service.captured_crop(db, flag_service.load_flag(db, user, flag_id)))


@router.get("/flags/{flag_id}/earlier.jpg")
def earlier_crop(flag_id: int, user: CurrentUser, db: Db) -> Response:
    """A replay's earlier capture, shown beside this one (server/console/service.earlier_capture decides who)."""
    return _image(service.earlier_capture(db, user, flag_service.load_flag(db, user, flag_id))[0])


@router.get("/flags/{flag_id}/scene.jpg")
def captured_scene(flag_id: int, user: CurrentUser, db: Db) -> Response:
    """The capture's scene key frame (faces blurred): as private as the crop, for those who may see the flag."""
    return _image(place.captured_scene(db, flag_service.load_flag(db, user, flag_id)))


@router.get("/flags/{flag_id}/reference.jpg")
def bed_reference(flag_id: int, user: CurrentUser, db: Db) -> Response:
    return _image(place.bed_reference(db, flag_service.load_flag(db, user, flag_id)))


@router.get("/persons/{person_id}/photo.jpg")
def person_photo(person_id: int, user: CurrentUser, db: Db, face: int | None = None) -> Response:
    people.visible_person(db, user, person_id)
    return _image(people.thumbnail(db, person_id, face))


@router.get("/attachments/{attachment_id}")
def attachment(attachment_id: int, user: CurrentUser, db: Db) -> Response:
    found = db.get(AppealAttachment, attachment_id)
    appeal = db.get(Appeal, found.appeal_id) if found else None
    if found is None or appeal is None:
        raise NotFound("attachment not found")
    flag_service.load_flag(db, user, appeal.flag_id)  # scope: 404 for another hospital's appeal
    return _download(found.content, found.content_type, found.filename)


def _stamp(request: Request) -> str:
    return formatter(request).time(utcnow(), "yyyyMMdd-HHmmss")


def _sheet_response(sheet: exports.Sheet, fmt: str, filename: str) -> Response:
    body = exports.sheet_csv(sheet) if fmt == "csv" else exports.to_xlsx(sheet)
    return _download(body, MEDIA[fmt], f"{filename}.{fmt}")


@router.get("/exports/flags.{fmt}")
def export_flags(request: Request, fmt: Format, user: CurrentUser, db: Db, filters: ExportFilters) -> Response:
    sheet = exports.flag_sheet(db, user, filters, formatter(request))
    _audit(request, db, user, "export.flags", "flag", "*", format=fmt, rows=len(sheet.rows), filters=filters.query())
    return _sheet_response(sheet, fmt, f"flags-{_stamp(request)}")


@router.get("/exports/campaigns/{campaign_id}/summary.{fmt}")
def export_summary(request: Request, campaign_id: int, fmt: Format, user: CurrentUser, db: Db) -> Response:
    sheet = exports.summary_sheet(db, user, campaign_id, formatter(request))
    _audit(request, db, user, "export.summary", "campaign", campaign_id, format=fmt)
    return _sheet_response(sheet, fmt, f"campaign-{campaign_id}-summary")


@router.get("/exports/flags/{flag_id}/evidence.zip")
def flag_evidence(request: Request, flag_id: int, user: CurrentUser, db: Db) -> Response:
    body, manifest_sha256 = exports.evidence_zip(db, user, exports.evidence_flags(db, user, flag_id=flag_id))
    _audit(request, db, user, "export.evidence", "flag", flag_id, manifest_sha256=manifest_sha256)
    return _download(body, MEDIA["zip"], f"evidence-flag-{flag_id}.zip")


@router.get("/exports/campaigns/{campaign_id}/evidence.zip")
def campaign_evidence(request: Request, campaign_id: int, user: CurrentUser, db: Db) -> Response:
    flags = exports.evidence_flags(db, user, campaign_id=campaign_id)
    body, manifest_sha256 = exports.evidence_zip(db, user, flags)
    _audit(request, db, user, "export.evidence", "campaign", campaign_id, flags=len(flags),
           manifest_sha256=manifest_sha256)
    return _download(body, MEDIA["zip"], f"evidence-campaign-{campaign_id}.zip")
