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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlmodel import Session, col, select

from models.errors import NotFound
from models.verdicts import EXCUSED_VERDICTS, Verdict
from server.accounts.tables import UserAccount
from server.campaigns.tables import Campaign, CheckTask
from server.checks.tables import CheckResult
from server.console import place, service
from server.console.format import Formatter, excel_local
from server.db import utcnow
from server.flags import service as flag_service
from server.flags.tables import Appeal, AppealAttachment, Flag, Review
from server.hospitals.tables import Bed, Hospital, Ward
from server.persons.tables import InsuredPerson
from server.spreadsheet import add_sheet, append_row, new_workbook, to_bytes

# (text key of the header, Excel column width in characters)
FLAG_COLUMNS = [("col_flag_id", 8), ("kind", 22), ("status", 16), ("hospital", 24), ("ward", 12), ("bed", 8),
                ("insured_person", 12), ("insurance_number", 20), ("campaign", 10), ("distance", 10),
                ("threshold", 8), ("created_at", 20), ("updated_at", 20), ("refused_amount", 14),
                ("deduction_amount", 14)]
SUMMARY_LEAD = [("hospital", 24), ("tasks", 8)]
MAX_EVIDENCE_FLAGS = 5000
Row = Sequence[Any]


@dataclass
class Sheet:
    """What a person opens in Excel: headers in their language, real dates, widths, and a totals row."""

    title: str
    header: list[str]
    widths: list[int]
    rows: list[Row]
    totals: Row | None = None
    percent_columns: tuple[int, ...] = ()
    money_columns: tuple[int, ...] = ()  # yuan, shown as ¥ with two decimals


def flag_sheet(db: Session, user: UserAccount, filters: service.FlagFilter, fmt: Formatter) -> Sheet:
    """Every flag in scope matching the filters, oldest first, with the patient, ward and bed of each."""
    stmt = service.flag_query(user, filters, db=db, columns=[
        Flag, Hospital.name, Ward.code, Bed.label, InsuredPerson.name, InsuredPerson.insurance_number,
        CheckResult.threshold])
    stmt = (stmt.outerjoin(CheckTask, col(CheckTask.id) == Flag.task_id)
            .outerjoin(CheckResult, col(CheckResult.id) == CheckTask.result_id).order_by(col(Flag.id)))
    rows: list[Row] = []
    for f, hospital, ward, bed, patient, number, threshold in db.exec(stmt):
        rows.append([f.id, fmt.t(f.kind.value), fmt.t(f.status.value), hospital or "", ward or "", bed or "",
                     patient or "", number or "", f.campaign_id, f.details.get("distance"),
                     threshold, excel_local(f.created_at, fmt.tz), excel_local(f.updated_at, fmt.tz),
                     _yuan(f.refused_fen), _yuan(f.deduction_fen)])
    totals = [fmt.t("total_row"), f"{len(rows)} {fmt.t('results')}", *[None] * (len(FLAG_COLUMNS) - 2)]
    money = tuple(i for i, (k, _) in enumerate(FLAG_COLUMNS) if k in ("refused_amount", "deduction_amount"))
    for i in money:
        totals[i] = sum(r[i] or 0 for r in rows)
    return Sheet(fmt.t("flags"), [fmt.t(k) for k, _ in FLAG_COLUMNS], [w for _, w in FLAG_COLUMNS], rows, totals,
                 money_columns=money)


def _yuan(fen: int | None) -> float | None:
    return None if fen is None else fen / 100


def summary_sheet(db: Session, user: UserAccount, campaign_id: int, fmt: Formatter) -> Sheet:
    """One row per hospital in scope: tasks, counts per verdict, verification rate; a totals row."""
    progress = service.campaign_progress(db, user, campaign_id)
    names = service.hospital_names(db, user)
    verdicts = [v.value for v in Verdict]
    rows: list[Row] = []
    for hospital_id in sorted(progress["by_hospital"], key=lambda h: service.natural_key(names.get(h, ""))):
        counts = progress["by_hospital"][hospital_id]
        total = sum(counts.values())
        excused = sum(counts.get(v.value, 0) for v in EXCUSED_VERDICTS)
        rows.append([names.get(hospital_id, ""), total, *[counts.get(v, 0) for v in verdicts],
                     _rate(counts.get(Verdict.VERIFIED.value, 0), total - excused)])
    sums = [sum(r[i] for r in rows) for i in range(1, 2 + len(verdicts))]
    excused_sum = sum(sums[1 + verdicts.index(v.value)] for v in EXCUSED_VERDICTS)
    totals = [fmt.t("total_row"), *sums, _rate(sums[1 + verdicts.index(Verdict.VERIFIED.value)], sums[0] - excused_sum)]
    header = [fmt.t(k) for k, _ in SUMMARY_LEAD] + [fmt.t(v) for v in verdicts] + [fmt.t("verification_rate")]
    widths = [w for _, w in SUMMARY_LEAD] + [12] * len(verdicts) + [14]
    return Sheet(f"{fmt.t('campaign')} {campaign_id}", header, widths, rows, totals,
                 percent_columns=(len(header) - 1,))


def _rate(verified: int, checkable: int) -> float:
    return verified / checkable if checkable else 1.0


def flag_rows(db: Session, user: UserAccount, filters: service.FlagFilter) -> list[Row]:
    """The flag sheet's rows in Chinese (kept for callers that want rows only)."""
    from server.console.i18n import translator

    return flag_sheet(db, user, filters, Formatter("zh", "Asia/Shanghai", translator("zh"))).rows


def _cell(value: Any) -> Any:
    # A CSV cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection); Excel files
    # store text as text instead (server/spreadsheet.py).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(header: Row, rows: Iterable[Row]) -> bytes:
    """UTF-8 with a byte-order mark, so spreadsheet programs read Chinese names correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([_csv_value(v) for v in row] for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")  # already local (excel_local); CSV has no date type
    return "" if value is None else _cell(value)


def sheet_csv(sheet: Sheet) -> bytes:
    return to_csv(sheet.header, [*sheet.rows, *([sheet.totals] if sheet.totals else [])])


def to_xlsx(sheet: Sheet) -> bytes:
    """A workbook with a bold frozen header, column widths, real dates and percentages, and a totals row."""
    workbook = new_workbook()
    ws = add_sheet(workbook, sheet.title)
    append_row(ws, sheet.header)
    for row in sheet.rows:
        append_row(ws, row)
    if sheet.totals:
        for cell in append_row(ws, sheet.totals):
            cell.font = Font(bold=True)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for index, width in enumerate(sheet.widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    for column in ws.iter_cols(min_row=2):
        for cell in column:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif cell.column - 1 in sheet.percent_columns and isinstance(cell.value, float):
                cell.number_format = "0.00%"
            elif cell.column - 1 in sheet.money_columns and isinstance(cell.value, int | float):
                cell.number_format = '"¥"#,##0.00'
    ws.auto_filter.ref = f"A1:{get_column_letter(len(sheet.header))}{max(1, len(sheet.rows) + 1)}"
    return to_bytes(workbook)


def evidence_flags(db: Session, user: UserAccount, *, flag_id: int | None = None,
                   campaign_id: int | None = None) -> list[Flag]:
    """The flags of one evidence package: one flag, or every flag of a campaign in scope."""
    if flag_id is not None:
        return [flag_service.load_flag(db, user, flag_id)]
    if db.get(Campaign, campaign_id) is None:
        raise NotFound("campaign not found")
    stmt = service.flag_query(user, service.FlagFilter(campaign_id=campaign_id), db=db).order_by(col(Flag.id))
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
        "result": result.model_dump(mode="json", exclude={"embedding", "server_embedding", "face_crop_jpeg"})
        if result else None,
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
    # 实地: the scene frame (faces blurred) and the bed's reference it is judged against.
    if (scene := place.captured_scene(db, flag)) is not None:
        files["scene.jpg"] = scene
    if scene is not None and (reference := place.bed_reference(db, flag)) is not None:
        files["bed_reference.jpg"] = reference
    files["record.json"] = json.dumps(record, ensure_ascii=False, indent=2).encode()
    return files
