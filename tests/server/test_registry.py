"""The bureau's insurance registry holds against a hospital's roster: only the bureau's feed writes it; a roster
that states other insurance is flagged, never believed; rosters mixing UTF-8 and GBK rows keep every name
right; names with bidi overrides or control characters are refused, invisible characters removed and
reported. Through a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from models.verdicts import FlagKind
from server.accounts.tables import Role
from server.flags.tables import Flag
from server.hospitals import service as hospitals
from server.hospitals.tables import HospitalKind
from server.persons.tables import InsuranceStatus, InsuredPerson
from tests import factories
from tests.console.helpers import sign_in

CHROMIUM = Path("/usr/bin/chromium")
HEADER = "hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at"
REGISTRY = ("insurance_number,name,insurance_status,insurance_type,insured_from,insured_until\n"
            "P-ENDED,丙,ended,职工医保,2019-01-01,2026-10-31\n"
            "P-OK,甲,active,职工医保,2019-01-01,\n")


def _api(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=60)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    client.headers["authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
    return client


def _world(engine) -> int:
    with Session(engine) as db:
        county = hospitals.get_or_create_county(db, province="P", city="C", county="Registry County")
        hospital = hospitals.upsert_hospital(db, code="R1", name="一院", county_id=county.id or 0,
                                             kind=HospitalKind.PUBLIC)
        db.commit()
        factories.user(db, "sup", Role.SUPERVISOR)
        factories.user(db, "staff", Role.HOSPITAL_STAFF, hospital_id=hospital.id)
        return hospital.id or 0


def _import(api: httpx.Client, body: bytes, **params: str) -> dict:
    response = api.post("/api/v1/roster/import", params={"create_beds": "true", **params},
                        files={"file": ("his.csv", body, "text/csv")})
    assert response.status_code == 200, response.text
    return response.json()


def _person(engine, number: str) -> InsuredPerson:
    with Session(engine) as db:
        return db.exec(select(InsuredPerson).where(InsuredPerson.insurance_number == number)).one()


def test_a_hospital_roster_never_writes_the_registry_and_a_disagreement_is_flagged(engine, live_server) -> None:
    _world(engine)
    server = live_server()
    roster = (f"{HEADER},insurance_status,insured_from,insured_until\n"
              "R1,W1,01,P-ENDED,丙,A1,2026-11-10T08:00:00+08:00,active,2019-01-01,\n"
              "R1,W1,02,P-OK,甲,A2,2026-11-10T08:00:00+08:00,active,2019-01-01,\n").encode()
    with closing(_api(server.url, "sup")) as sup, closing(_api(server.url, "staff")) as staff:
        refused = staff.post("/api/v1/registry/import", files={"file": ("r.csv", REGISTRY.encode())})
        assert refused.status_code == 403  # hospitals never feed the registry
        fed = sup.post("/api/v1/registry/import", files={"file": ("r.csv", REGISTRY.encode())}).json()
        assert fed["created"] == 2 and fed["rejected"] == []
        for client in (staff, sup):  # a hospital's file stays a hospital's, whoever uploads it
            report = _import(client, roster)
            assert report["rejected"] == [] and report["registry_mismatches"] == 1
            ended = _person(engine, "P-ENDED")
            assert ended.insurance_status == InsuranceStatus.ENDED and str(ended.insured_until) == "2026-10-31"
        flags = sup.get("/api/v1/flags", params={"kind": "registry_mismatch"}).json()["items"]
        assert len(flags) == 1  # one open flag per admission, however often the file comes
        assert flags[0]["details"] == {"his_insurance_status": "active", "registry_insurance_status": "ended",
                                       "his_insured_until": "", "registry_insured_until": "2026-10-31"}
        ineligible = sup.get("/api/v1/flags", params={"kind": "ineligible"}).json()["items"]
        assert [f["details"]["reason"] for f in ineligible] == ["coverage_ended"]  # by the registry's record
        # The bureau's feed is what changes the registry, and it re-checks current admissions.
        ended_now = REGISTRY.replace("P-OK,甲,active,职工医保,2019-01-01,",
                                     "P-OK,甲,ended,职工医保,2019-01-01,2026-11-01")
        again = sup.post("/api/v1/registry/import", files={"file": ("r.csv", ended_now.encode())}).json()
        assert again["updated"] == 1 and again["unchanged"] == 1 and again["ineligible"] == 1
        assert _person(engine, "P-OK").insurance_status == InsuranceStatus.ENDED
    with closing(sign_in(server.url, "sup")) as console:
        page = console.get(f"/console/flags/{flags[0]['id']}")
        assert page.status_code == 200
        assert "参保信息与登记不符" in page.text and "医保登记参保状态" in page.text and "终止" in page.text
        shown = re.sub(r"<[^>]*>", " ", page.text.split("<body", 1)[1])
        assert "registry_insurance_status" not in shown and "ended" not in shown  # words, not keys


def test_a_utf8_roster_with_one_gbk_row_keeps_every_name_right(engine, live_server) -> None:
    _world(engine)
    server = live_server()
    rows = [f"R1,W1,0{i},P-{i},{name},M{i},2026-11-10T08:00:00+08:00" for i, name in
            enumerate(["张三", "李四", "王五", "赵六"], start=1)]
    lines = [HEADER.encode("utf-8")] + [r.encode("gbk") if i == 2 else r.encode("utf-8") for i, r in enumerate(rows)]
    body = b"\r\n".join(lines) + b"\r\n"
    with closing(_api(server.url, "sup")) as sup:
        report = _import(sup, body)
    assert report["created"] == 4 and report["rejected"] == [] and report["encoding"] == "utf-8+gb18030"
    assert [_person(engine, f"P-{i}").name for i in range(1, 5)] == ["张三", "李四", "王五", "赵六"]


def test_names_with_bidi_or_control_characters_are_refused_and_invisible_ones_removed(engine, live_server) -> None:
    _world(engine)
    server = live_server()
    body = (f"{HEADER}\n"
            "R1,W1,01,P-1,张三\u202eLQ,N1,2026-11-10T08:00:00+08:00\n"
            "R1,W1,02,P-2,\u200b王\u200b五\u3000,N2,2026-11-10T08:00:00+08:00\n"
            "R1,W1,03,P-3,李\x07四,N3,2026-11-10T08:00:00+08:00\n"
            "R1,W1,04,P-4,\u200b\u3000,N4,2026-11-10T08:00:00+08:00\n").encode()
    with closing(_api(server.url, "sup")) as sup:
        report = _import(sup, body)
        assert report["created"] == 1
        assert [(r["line"], r["code"]) for r in report["rejected"]] == [
            (2, "name_refused"), (4, "name_refused"), (5, "name_refused")]
        assert "U+202E" in report["rejected"][0]["message"]
        [cleaned] = report["cleaned"]
        assert cleaned["line"] == 3 and "U+200B" in cleaned["message"] and "U+3000" not in cleaned["message"]
        registry = ("insurance_number,name,insurance_status\nP-9,赵\u202e六,active\nP-10,\u2066钱七,active\n"
                    "P-11,孙\u200d八,active\n")
        fed = sup.post("/api/v1/registry/import", files={"file": ("r.csv", registry.encode())}).json()
        assert [(r["line"], r["code"]) for r in fed["rejected"]] == [(2, "name_refused"), (3, "name_refused")]
    assert _person(engine, "P-2").name == "王五" and _person(engine, "P-11").name == "孙八"
    with Session(engine) as db:
        assert {p.insurance_number for p in db.exec(select(InsuredPerson))} == {"P-2", "P-11"}
        assert db.exec(select(Flag).where(Flag.kind == FlagKind.REGISTRY_MISMATCH)).first() is None


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_reviewer_reads_the_disagreement_in_words_in_chromium_at_390_px(engine, live_server) -> None:
    from playwright.sync_api import sync_playwright

    _world(engine)
    server = live_server()
    roster = (f"{HEADER},insurance_status,insured_from,insured_until\n"
              "R1,W1,01,P-ENDED,丙,A1,2026-11-10T08:00:00+08:00,active,2019-01-01,\n").encode()
    with closing(_api(server.url, "sup")) as sup:
        sup.post("/api/v1/registry/import", files={"file": ("r.csv", REGISTRY.encode())}).raise_for_status()
        assert _import(sup, roster)["registry_mismatches"] == 1
        [flag] = sup.get("/api/v1/flags", params={"kind": "registry_mismatch"}).json()["items"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = chromium.new_context(base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True,
                                    locale="zh-CN").new_page()
        page.goto("/console/dashboard")
        page.fill("#username", "sup")
        page.fill("#password", factories.PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(re.compile(r"/console/"))
        page.goto(f"/console/flags/{flag['id']}")
        text = page.inner_text("body")
        assert "参保信息与登记不符" in text
        assert re.search(r"医院上报参保状态\s*参保缴费中", text) and re.search(r"医保登记参保状态\s*终止", text)
        assert "registry_" not in text and "ended" not in text
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        chromium.close()


def test_the_cli_feeds_the_registry_and_lists_bad_rows_by_line(engine, db_url, tmp_path) -> None:
    from typer.testing import CliRunner

    from server.cli import app

    _world(engine)
    feed = tmp_path / "registry.csv"
    feed.write_bytes((REGISTRY + "P-BAD,某,maybe,,,\n").encode("gb18030"))
    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["registry", "import", str(feed)], env=env)
    assert result.exit_code == 1, result.output
    assert "line 4: invalid_row" in result.output and "Traceback" not in result.output
    assert _person(engine, "P-ENDED").insurance_status == InsuranceStatus.ENDED
    assert _person(engine, "P-OK").name == "甲"  # the GBK file read right
