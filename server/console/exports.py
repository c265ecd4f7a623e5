"""Exports: the flag list and a campaign summary as CSV or Excel; evidence packages as zip with a manifest.

The manifest lists every file of the package with its sha256, so a court or an auditor can check that
nothing in the package was changed after export.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.verdicts import Verdict
from server.accounts.tables import UserAccount
from server.campaigns.tables import Campaign, CheckTask
from server.checks.tables import CheckResult
from server.console import service
from server.console.tables import Appeal, AppealAttachment
from server.db import utcnow
from server.flags import service as flag_service
from server.flags.tables import Flag, Review
from server.hospitals.tables import Hospital

FLAG_HEADER = ["flag_id", "kind", "status", "hospital_id", "hospital", "campaign_id", "task_id", "admission_id",
               "distance", "created_at", "updated_at"]
MAX_EVIDENCE_FLAGS = 5000
Row = Sequence[Any]


def flag_rows(db: Session, user: UserAccount, filters: service.FlagFilter) -> list[Row]:
    """Every flag in scope matching the filters, oldest first."""
    stmt = service.flag_query(user, filters).order_by(col(Flag.id))
    names = service.hospital_names(db, user)
    return [[f.id, f.kind.value, f.status.value, f.hospital_id, names.get(f.hospital_id or 0, ""), f.campaign_id,
             f.task_id, f.admission_id, f.details.get("distance"), f.created_at.isoformat(),
             f.updated_at.isoformat()] for f in db.exec(stmt)]


def summary_rows(db: Session, user: UserAccount, campaign_id: int) -> tuple[list[str], list[Row]]:
    """One row per hospital in scope: tasks, counts per verdict, verification rate."""
    progress = service.campaign_progress(db, user, campaign_id)
    names = service.hospital_names(db, user)
    verdicts = [v.value for v in Verdict]
    header = ["hospital_id", "hospital", "tasks", *verdicts, "verification_rate"]
    rows: list[Row] = []
    for hospital_id, counts in sorted(progress["by_hospital"].items()):
        total = sum(counts.values())
        checkable = total - counts.get(Verdict.EXEMPT.value, 0)
        rate = counts.get(Verdict.VERIFIED.value, 0) / checkable if checkable else 1.0
        rows.append([hospital_id, names.get(hospital_id, ""), total, *[counts.get(v, 0) for v in verdicts],
                     round(rate, 4)])
    return header, rows


def _cell(value: Any) -> Any:
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(header: Row, rows: Iterable[Row]) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs read Chinese names correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(header: Row, rows: Iterable[Row], title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title[:31])
    sheet.append(list(header))
    for row in rows:
        sheet.append([_cell(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def evidence_flags(db: Session, user: UserAccount, *, flag_id: int | None = None,
                   campaign_id: int | None = None) -> list[Flag]:
    """The flags of one evidence package: one flag, or every flag of a campaign in scope."""
    if flag_id is not None:
        return [flag_service.load_flag(db, user, flag_id)]
    if db.get(Campaign, campaign_id) is None:
        raise NotFound("campaign not found")
    stmt = service.flag_query(user, service.FlagFilter(campaign_id=campaign_id)).order_by(col(Flag.id))
    return list(db.exec(stmt.limit(MAX_EVIDENCE_FLAGS)))


def evidence_zip(db: Session, user: UserAccount, flags: list[Flag]) -> tuple[bytes, str]:
    """The zip and the sha256 of its manifest."""
    files: dict[str, bytes] = {}
    for flag in flags:
        for name, content in _flag_files(db, flag).items():
            files[f"flag-{flag.id}/{name}"] = content
    manifest = {
        "created_at": utcnow().isoformat(), "created_by": user.username, "flag_ids": [f.id for f in flags],
        "files": [{"path": path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                  for path, data in sorted(files.items())],
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            archive.writestr(path, data)
        archive.writestr("manifest.json", manifest_bytes)
    return buffer.getvalue(), hashlib.sha256(manifest_bytes).hexdigest()


def _flag_files(db: Session, flag: Flag) -> dict[str, bytes]:
    task = db.get(CheckTask, flag.task_id) if flag.task_id else None
    result_id = (task.result_id if task else None) or flag.details.get("result_id")
    result = db.get(CheckResult, result_id) if result_id else None
    record: dict[str, Any] = {
        "flag": flag.model_dump(mode="json"),
        "hospital": (h.model_dump(mode="json") if (h := db.get(Hospital, flag.hospital_id or 0)) else None),
        "task": task.model_dump(mode="json") if task else None,
        # The stored embedding is left out: the crop and the scores are the evidence a person can judge.
        "result": result.model_dump(mode="json", exclude={"embedding", "face_crop_jpeg"}) if result else None,
        "reviews": [r.model_dump(mode="json") for r in db.exec(select(Review).where(Review.flag_id == flag.id)
                                                                .order_by(col(Review.id)))],
        "appeals": [],
    }
    files: dict[str, bytes] = {}
    for appeal in db.exec(select(Appeal).where(Appeal.flag_id == flag.id).order_by(col(Appeal.id))):
        attachments = list(db.exec(select(AppealAttachment).where(AppealAttachment.appeal_id == appeal.id)
                                   .order_by(col(AppealAttachment.id))))
        record["appeals"].append({**appeal.model_dump(mode="json"), "attachments": [
            a.model_dump(mode="json", exclude={"content"}) for a in attachments]})
        for a in attachments:
            files[f"appeal-{appeal.id}/{a.id}-{a.filename}"] = a.content
    if result and result.face_crop_jpeg:
        files["captured_crop.jpg"] = result.face_crop_jpeg
    if (thumbnail := service.enrolled_thumbnail(db, flag)) is not None:
        files["enrolled_photo.jpg"] = thumbnail
    files["record.json"] = json.dumps(record, ensure_ascii=False, indent=2).encode()
    return files
