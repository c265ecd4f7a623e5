"""Exports: CSV and Excel flag lists and campaign summaries; evidence packages whose manifest hashes hold."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import Session, select

from server.audit.tables import AuditRecord
from server.console.exports import to_csv
from server.flags.tables import Flag
from server.persons.tables import InsuredPerson
from tests.console.helpers import sign_in


def _sheet(response) -> list[tuple]:
    assert response.status_code == 200, response.text
    workbook = load_workbook(io.BytesIO(response.content))
    return workbook.active


def test_flag_list_and_summary_export_as_csv_and_excel_within_scope(county, engine) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    with Session(engine) as db:
        created = {f.id: f.created_at for f in db.exec(select(Flag))}
        person = {f.id: db.get(InsuredPerson, f.insured_person_id) for f in db.exec(select(Flag))}
    with closing(sign_in(server.url, "sup")) as sup, closing(sign_in(server.url, "staff2")) as staff:
        csv_body = sup.get("/console/exports/flags.csv").content
        assert csv_body.startswith("\ufeff".encode())
        lines = csv_body.decode("utf-8-sig").strip().splitlines()
        assert lines[0].startswith("疑点号,类型,状态,医院,病区,床位,参保人,医保编号") and len(lines) == 1 + 4 + 1
        assert lines[-1].startswith("合计,4 条")
        filtered = sup.get("/console/exports/flags.csv", params={"kind": "absent"}).text.strip().splitlines()
        assert len(filtered) == 1 + 2 + 1

        ws = _sheet(sup.get("/console/exports/flags.xlsx"))
        header = [c.value for c in ws[1]]
        assert header[:8] == ["疑点号", "类型", "状态", "医院", "病区", "床位", "参保人", "医保编号"]
        assert ws.freeze_panes == "A2" and ws[1][0].font.b
        assert ws.column_dimensions["D"].width >= 20 and ws.column_dimensions["H"].width >= 16
        body = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
        assert body[-1][:2] == ["合计", "4 条"] and ws[ws.max_row][0].font.b
        by_id = {r[0]: r for r in body[:-1]}
        assert set(by_id) == set(flags.values())
        impersonated = by_id[flags[(h1, "impersonated")]]
        assert impersonated[1] == "人脸不符（疑似冒名）" and impersonated[2] == "待初审"
        assert impersonated[3] == "Hospital 1" and impersonated[4] == "W1" and impersonated[5]
        who = person[flags[(h1, "impersonated")]]
        assert impersonated[6] == who.name and impersonated[7] == who.insurance_number
        assert isinstance(impersonated[9], float) and isinstance(impersonated[10], float)
        stamp = impersonated[11]
        assert isinstance(stamp, datetime)  # a real Excel date, not an ISO string
        expected = created[impersonated[0]].astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
        assert abs((stamp - expected).total_seconds()) < 1  # local time (UTC+8), not UTC

        summary = sup.get("/console/exports/campaigns/1/summary.csv").text.strip().splitlines()
        header = summary[0].lstrip("\ufeff").split(",")
        assert header[:3] == ["医院", "任务数", "待核查"] and len(summary) == 1 + 2 + 1
        row = dict(zip(header, summary[1].split(","), strict=True))
        assert row["医院"] == "Hospital 1" and row["任务数"] == "3" and row["核查通过"] == "1"
        assert float(row["在院病人核查率"]) == pytest.approx(1 / 3)
        ws = _sheet(sup.get("/console/exports/campaigns/1/summary.xlsx"))
        totals = [c.value for c in ws[ws.max_row]]
        assert totals[:2] == ["合计", 6] and ws[ws.max_row][-1].number_format == "0.00%"
        own = _sheet(staff.get("/console/exports/campaigns/1/summary.xlsx"))
        assert [r[0].value for r in own.iter_rows(min_row=2)] == ["Hospital 2", "合计"]
        assert {line.split(",")[3] for line in staff.get("/console/exports/flags.csv").text.strip().splitlines()[1:-1]
                } == {"Hospital 2"}
        english = sup.get("/console/exports/flags.csv", params={"lang": "en"}).text
        assert english.lstrip("\ufeff").startswith("Flag,Kind,Status,Hospital")


def test_csv_cells_cannot_smuggle_spreadsheet_formulas() -> None:
    body = to_csv(["a"], [["=HYPERLINK(\"http://x\")"], ["plain"], ["-1+2"]]).decode("utf-8-sig")
    assert body.splitlines()[1:] == ['"\'=HYPERLINK(""http://x"")"', "plain", "'-1+2"]


def _check_manifest(body: bytes) -> dict:
    archive = zipfile.ZipFile(io.BytesIO(body))
    manifest = json.loads(archive.read("manifest.json"))
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(archive.namelist()) - {"manifest.json"}
    for path, entry in listed.items():
        data = archive.read(path)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    return manifest


def test_evidence_packages_carry_a_manifest_of_sha256_hashes_and_are_audited(county, engine) -> None:
    server, world, flags = county
    impersonated = flags[(world.hospital_ids[0], "impersonated")]
    with closing(sign_in(server.url, "sup")) as sup:
        one = sup.get(f"/console/exports/flags/{impersonated}/evidence.zip")
        assert one.status_code == 200 and one.headers["content-type"] == "application/zip"
        manifest = _check_manifest(one.content)
        paths = {f["path"] for f in manifest["files"]}
        assert {f"flag-{impersonated}/captured_crop.jpg", f"flag-{impersonated}/enrolled_photo.jpg",
                f"flag-{impersonated}/record.json"} <= paths
        record = json.loads(zipfile.ZipFile(io.BytesIO(one.content)).read(f"flag-{impersonated}/record.json"))
        crop = zipfile.ZipFile(io.BytesIO(one.content)).read(f"flag-{impersonated}/captured_crop.jpg")
        assert record["result"]["evidence_sha256"] == hashlib.sha256(crop).hexdigest()
        assert "embedding" not in record["result"] and record["task"]["nonce"]
        campaign = _check_manifest(sup.get("/console/exports/campaigns/1/evidence.zip").content)
        assert sorted(campaign["flag_ids"]) == sorted(flags.values())
        assert sup.get("/console/exports/campaigns/999/evidence.zip").status_code == 404
    with Session(engine) as db:
        exported = list(db.exec(select(AuditRecord).where(AuditRecord.action == "export.evidence")))
        assert len(exported) == 2 and all(len(r.data["manifest_sha256"]) == 64 for r in exported)
