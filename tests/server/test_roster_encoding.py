"""Rosters as HIS systems export them: GBK/GB18030 or UTF-8 (with or without BOM), one undecodable row
rejected with its line number while the good rows import; beds a registry of their own; CLI input errors
are a message and exit status 2, never a traceback."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, func, select
from typer.testing import CliRunner

from server.accounts.tables import Role
from server.admissions.tables import Admission
from server.cli import app
from server.hospitals import registry
from server.hospitals import service as hospitals
from server.hospitals.tables import Bed, HospitalKind
from tests import factories

HEADER = "hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at\n"
ROWS = [f"H1,内科一病区,{b:02d},INS-G{b},病人{'甲乙丙丁戊'[b - 1]},G{b},2026-11-0{b}T08:00:00" for b in range(1, 6)]


def gbk_roster(bad_line: int | None = 4) -> bytes:
    """A GBK roster; on `bad_line` (1-based, header = 1) a byte sequence that is no GBK/GB18030 text."""
    lines = [HEADER.strip().encode("gbk")] + [r.encode("gbk") for r in ROWS]
    if bad_line is not None:
        lines[bad_line - 1] = lines[bad_line - 1].replace("病人".encode("gbk"), b"\x81\x20\xff")
    return b"\r\n".join(lines) + b"\r\n"


def _world(db: Session) -> None:
    county = hospitals.get_or_create_county(db, province="P", city="C", county="K")
    hospitals.upsert_hospital(db, code="H1", name="一院", county_id=county.id or 0, kind=HospitalKind.PUBLIC)
    db.commit()
    beds = "hospital_code,ward_code,ward_name,bed_label\n" + "".join(f"H1,内科一病区,内科,{b:02d}\n"
                                                                    for b in range(1, 6))
    registry.import_beds(db, rows=registry.parse_beds(beds.encode("gb18030")), actor="test")


def test_a_gbk_roster_imports_every_good_row_and_rejects_the_undecodable_one_by_line(engine, live_server) -> None:
    with Session(engine) as db:
        _world(db)
        factories.user(db, "sup", Role.SUPERVISOR)
    server = live_server()
    with closing(httpx.Client(base_url=server.url, timeout=60)) as api:
        token = api.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        api.headers["authorization"] = f"Bearer {token['access_token']}"
        report = api.post("/api/v1/roster/import", files={"file": ("his.csv", gbk_roster(), "text/csv")}).json()
        assert report["encoding"] == "gb18030" and report["created"] == 4
        assert [(r["line"], r["code"]) for r in report["rejected"]] == [(4, "undecodable_row")]
        # The same file with the encoding named; and a UTF-8 file with a BOM.
        again = api.post("/api/v1/roster/import", params={"encoding": "gbk"},
                         files={"file": ("his.csv", gbk_roster(), "text/csv")}).json()
        assert again["unchanged"] == 4 and [r["line"] for r in again["rejected"]] == [4]
        bom = ("\ufeff" + HEADER + ROWS[2] + "\n").encode("utf-8")
        assert api.post("/api/v1/roster/import", files={"file": ("his.csv", bom)}).json()["created"] == 1
        for name in ("klingon", "utf\x008"):  # a NUL in the name once answered 500
            unknown = api.post("/api/v1/roster/import", params={"encoding": name},
                               files={"file": ("his.csv", gbk_roster(None))})
            assert unknown.status_code == 422 and unknown.json()["code"] == "invalid_input"
    with Session(engine) as db:
        names = sorted(a for a in db.exec(select(Admission.his_admission_no)))
        assert names == ["G1", "G2", "G3", "G4", "G5"]


def test_a_row_for_an_unknown_bed_is_rejected_by_line_unless_beds_may_be_created(engine, live_server) -> None:
    with Session(engine) as db:
        _world(db)
        factories.user(db, "sup", Role.SUPERVISOR)
    server = live_server()
    body = (HEADER + ROWS[0] + "\nH1,内科一病区,99,INS-X,某人,X1,2026-11-01T08:00:00\n"
            "H1,外科,01,INS-Y,某乙,Y1,2026-11-01T08:00:00\n").encode()
    with closing(httpx.Client(base_url=server.url, timeout=60)) as api:
        token = api.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        api.headers["authorization"] = f"Bearer {token['access_token']}"
        report = api.post("/api/v1/roster/import", files={"file": ("his.csv", body)}).json()
        assert report["created"] == 1
        assert [(r["line"], r["code"]) for r in report["rejected"]] == [(3, "unknown_bed"), (4, "unknown_bed")]
        with Session(engine) as db:
            assert db.exec(select(func.count()).select_from(Bed)).one() == 5  # nothing created by the roster
        created = api.post("/api/v1/roster/import", params={"create_beds": "true"},
                           files={"file": ("his.csv", body)}).json()
        assert created["created"] == 2 and created["rejected"] == []
        beds = api.get("/api/v1/beds", params={"hospital_id": 1}).json()
        assert {(b["ward_code"], b["bed_label"]) for b in beds} >= {("内科一病区", "99"), ("外科", "01")}


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    from server.db import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as db:
        _world(db)
    engine.dispose()
    return {"BEDCHECK_DATABASE_URL": url, "BEDCHECK_DATA_DIR": str(tmp_path)}


def test_the_cli_imports_a_gbk_roster_and_lists_the_rejected_line(cli_env, tmp_path: Path) -> None:
    roster = tmp_path / "his.csv"
    roster.write_bytes(gbk_roster())
    result = CliRunner().invoke(app, ["roster", "import", str(roster)], env=cli_env)
    assert result.exit_code == 1, result.output  # some rows were rejected
    assert "line 4: undecodable_row" in result.output and "gb18030" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("case", ["unknown_encoding", "missing_columns", "hospitals_missing_columns",
                                  "hospitals_not_utf8", "no_such_file", "header_undecodable"])
def test_cli_input_errors_print_a_message_and_exit_2(case: str, cli_env, tmp_path: Path) -> None:
    file = tmp_path / "input.csv"
    command = ["roster", "import", str(file)]
    if case == "unknown_encoding":
        file.write_bytes(gbk_roster())
        command += ["--encoding", "klingon"]
    elif case == "missing_columns":
        file.write_text("name,bed\n张三,01\n", encoding="utf-8")
    elif case == "hospitals_missing_columns":
        file.write_text("code,name\nH9,九院\n", encoding="utf-8")
        command = ["hospitals-import", str(file)]
    elif case == "hospitals_not_utf8":
        file.write_bytes("province,city,county,code,name\n省,市,县,H9,九院\n".encode("gbk") + b"\xff\xfe\n")
        command = ["hospitals-import", str(file)]
    elif case == "header_undecodable":
        file.write_bytes(b"\xff\xfe\xfd," + HEADER.encode() + ROWS[0].encode() + b"\n")
        command += ["--encoding", "gb18030"]
    else:
        command = ["roster", "import", str(tmp_path / "nowhere.csv")]
    result = CliRunner().invoke(app, command, env=cli_env)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and result.output.strip()
