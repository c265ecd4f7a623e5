"""Exports: CSV and Excel flag lists and campaign summaries; evidence packages whose manifest hashes hold."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from contextlib import closing

from openpyxl import load_workbook
from sqlmodel import Session, select

from server.audit.tables import AuditRecord
from server.console.exports import to_csv
from tests.console.helpers import sign_in


def test_flag_list_and_summary_export_as_csv_and_excel_within_scope(county) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    with closing(sign_in(server.url, "sup")) as sup, closing(sign_in(server.url, "staff2")) as staff:
        csv_body = sup.get("/console/exports/flags.csv").content
        assert csv_body.startswith("\ufeff".encode())
        lines = csv_body.decode("utf-8-sig").strip().splitlines()
        assert lines[0].startswith("flag_id,kind,status,hospital_id") and len(lines) == 1 + 4
        filtered = sup.get("/console/exports/flags.csv", params={"kind": "absent"}).text.strip().splitlines()
        assert len(filtered) == 1 + 2
        workbook = load_workbook(io.BytesIO(sup.get("/console/exports/flags.xlsx").content), read_only=True)
        assert len(list(workbook.active.iter_rows())) == 1 + 4
        summary = sup.get("/console/exports/campaigns/1/summary.csv").text.strip().splitlines()
        header = summary[0].lstrip("\ufeff").split(",")
        assert header[:3] == ["hospital_id", "hospital", "tasks"] and len(summary) == 1 + 2
        row = dict(zip(header, summary[1].split(","), strict=True))
        assert row["tasks"] == "3" and row["verified"] == "1" and float(row["verification_rate"]) == round(1 / 3, 4)
        own = staff.get("/console/exports/campaigns/1/summary.xlsx")
        rows = list(load_workbook(io.BytesIO(own.content), read_only=True).active.iter_rows(values_only=True))
        assert [r[0] for r in rows[1:]] == [h2]
        assert {line.split(",")[3] for line in staff.get("/console/exports/flags.csv").text.strip().splitlines()[1:]
                } == {str(h2)}


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
