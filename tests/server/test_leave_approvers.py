"""Leave approvals name two different, visible people; the leave page shows how many patients of each ward are
on leave each day. API on SQLite and PostgreSQL; the page in Chromium at 390 px."""

from __future__ import annotations

import re
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from server.accounts.tables import Role
from server.admissions.tables import Leave
from server.localtime import LOCAL_TZ
from tests import factories
from tests.console.helpers import csrf_of, sign_in

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def ward(engine, live_server):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a", "b", "c", "d"])
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
    return world, live_server()


def _api(base_url: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post("/api/v1/auth/token", json={"username": "staff1", "password": factories.PASSWORD})
    client.headers["authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
    return client


def _leave(api: httpx.Client, admission_id: int, doctor: str, officer: str, hours: int = 2) -> httpx.Response:
    start = datetime.now(UTC) + timedelta(minutes=1)
    return api.post("/api/v1/leaves", json={
        "admission_id": admission_id, "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=hours)).isoformat(), "reason": "回家取物",
        "approved_by_doctor": doctor, "approved_by_insurance_officer": officer})


@pytest.mark.parametrize("doctor, officer, code", [
    ("王医生", "王医生", "approvers_not_distinct"),
    ("王 医生", "\u3000王医生 ", "approvers_not_distinct"),  # the same name, other blanks
    ("Dr Wang", "dr wang", "approvers_not_distinct"),
    ("\u200b", "李科长", "name_refused"),                    # a zero-width space is no name
    ("王医生", "\u3000\u3000", "name_refused"),             # nor ideographic spaces
    ("王医生", "\u200b\u2060\ufeff", "name_refused"),
    ("王医生\u202e", "李科长", "name_refused"),               # a bidi override
    ("王医生", "李\x00科长", "name_refused"),
])
def test_one_person_or_an_invisible_name_cannot_approve_a_leave(ward, engine, doctor, officer, code) -> None:
    world, server = ward
    with closing(_api(server.url)) as api:
        refused = _leave(api, world.patients["h1:a"].admission_id, doctor, officer)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == code
    with Session(engine) as db:
        assert db.exec(select(Leave)).first() is None


def test_invisible_characters_are_removed_from_approvers_and_the_answer_says_so(ward, engine) -> None:
    world, server = ward
    with closing(_api(server.url)) as api:
        created = _leave(api, world.patients["h1:a"].admission_id, "\u200b王\u200b医生", "李科长\ufeff")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["approved_by_doctor"] == "王医生" and body["approved_by_insurance_officer"] == "李科长"
    assert body["names_cleaned"] == ["U+200B ZERO WIDTH SPACE", "U+FEFF ZERO WIDTH NO-BREAK SPACE"]


def test_the_leave_page_shows_leaves_per_ward_and_day_and_what_was_cleaned(ward) -> None:
    world, server = ward
    with closing(_api(server.url)) as api:
        for key in ("h1:a", "h1:b", "h1:c"):
            assert _leave(api, world.patients[key].admission_id, "王医生", "李科长").status_code == 201
    today = datetime.now(LOCAL_TZ).date().isoformat()
    with closing(sign_in(server.url, "staff1")) as staff:
        page = staff.get("/console/leaves")
        assert "各病区每日请假人数" in page.text
        row = re.search(rf'<tr data-ward="{world.ward_ids[0]}" data-day="{today}">(.*?)</tr>', page.text, re.S)
        assert row is not None and re.sub(r"<[^>]+>", "|", row.group(1)).split("|")[-2] == "3"
        start = datetime.now(LOCAL_TZ) + timedelta(minutes=10)
        posted = staff.post("/console/leaves", data={
            "csrf_token": csrf_of(page), "his_admission_no": "A0d", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "reason": "检查",
            "approved_by_doctor": "王医生\u200b", "approved_by_insurance_officer": "李科长"}, follow_redirects=True)
        assert posted.status_code == 200, posted.text[:300]
        assert "零宽空格" in posted.text and 'id="names-cleaned"' in posted.text
        same = staff.post("/console/leaves", data={
            "csrf_token": csrf_of(page), "his_admission_no": "A0d", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"), "reason": "检查",
            "approved_by_doctor": "王医生", "approved_by_insurance_officer": "王医生"})
        assert same.status_code == 422 and "两名不同的审批人" in same.text


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_leave_volume_reads_at_390_px_in_chromium(ward) -> None:
    from playwright.sync_api import sync_playwright

    world, server = ward
    with closing(_api(server.url)) as api:
        for key in ("h1:a", "h1:b"):
            assert _leave(api, world.patients[key].admission_id, "王医生", "李科长").status_code == 201
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = chromium.new_context(base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True,
                                       locale="zh-CN")
        page = context.new_page()
        page.goto("/console/dashboard")
        page.fill("#username", "staff1")
        page.fill("#password", factories.PASSWORD)
        page.click("#sign-in")
        page.wait_for_url(re.compile(r"/console/"))
        page.goto("/console/leaves")
        table = page.locator("#leave-volume")
        assert table.is_visible()
        assert "各病区每日请假人数" in page.content()
        cells = table.locator(f'tr[data-ward="{world.ward_ids[0]}"]').first.locator("td").all_inner_texts()
        assert cells[-1] == "2" and cells[0] == datetime.now(LOCAL_TZ).date().isoformat()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        chromium.close()
