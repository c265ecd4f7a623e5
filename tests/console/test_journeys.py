"""Each role's day in headless Chromium on the demo county (`bedcheck demo`, serving, its simulated ward devices
still running): real crops and enrolled thumbnails when ../shared/faces is present, local times, search by
insurance number, keyboard "submit and next", bulk dismissal of one ward's overdue flags (each audited), the
hospital's to-do list and appeal, error pages, 390 px phone width, and no raw value on any page visited.
Screenshots go to artifacts/screenshots/journey-*.png (never committed)."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlmodel import Session, col, func, select

from models.verdicts import FlagKind
from server.admissions.tables import Admission
from server.audit.tables import AuditRecord
from server.console.format import as_local
from server.console.service import natural_key
from server.db import make_engine
from server.flags.tables import Flag, FlagStatus
from server.hospitals.tables import Hospital
from server.persons.tables import FaceEmbedding, InsuredPerson
from server.simulation.real_faces import default_faces_dir

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = REPO / "artifacts" / "screenshots"
PASSWORD = "demo-password"
TZ = ZoneInfo("Asia/Shanghai")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
]

# What a person must never read: Python values, dict/list syntax, enum or text keys, UTC times.
RAW = [
    (re.compile(r"\b(True|False|None)\b"), "a Python value"),
    (re.compile(r"[{\[]'|'[}\]]|': "), "dict or list syntax"),
    (re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b"), "an enum value or a text key"),
    (re.compile(r"\bUTC\b|\d{2}:\d{2}:\d{2}\.\d+|T\d{2}:\d{2}:\d{2}"), "a UTC or ISO time"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`bedcheck demo` serving a small county: one ward of each of three hospitals stays offline (overdue)."""
    data = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {**os.environ, "BEDCHECK_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}
    env.pop("BEDCHECK_DATABASE_URL", None)
    log = (data / "demo.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--hospitals", "12", "--inpatients", "360",
         "--deadline-s", "25", "--offline-s", "100000", "--port", str(port), "--seed", "5",
         "--no-review"],  # the flags are left for the people of this test
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 420
    while "按 Ctrl-C 结束演示" not in (data / "demo.log").read_text(errors="replace"):  # the demo serves
        assert process.poll() is None, (data / "demo.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the demo did not start serving within 7 minutes"
        time.sleep(1)
    engine = make_engine(f"sqlite:///{data / 'demo.db'}")
    try:
        yield f"http://127.0.0.1:{port}", engine
    finally:
        engine.dispose()
        process.send_signal(signal.SIGINT)  # the demo's Ctrl-C: it stops its server and devices
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Pages:
    """Every page a journey saw: its visible text and title, checked at the end for raw values."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, str]] = {}

    def look(self, page, name: str | None = None) -> None:
        page.wait_for_load_state("load")
        # Text nodes, hidden ones too, except hashes, nonces and numbers set in monospace.
        body = page.evaluate("""() => { const c = document.body.cloneNode(true);
            c.querySelectorAll('.mono, script, style').forEach(e => e.remove()); return c.textContent; }""")
        self.seen[page.url] = (page.title(), body)
        if name:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"journey-{name}.png"), full_page=True)

    def raw_values(self) -> list[str]:
        found = []
        for url, (title, body) in self.seen.items():
            for pattern, what in RAW:
                for match in pattern.finditer(f"{title}\n{body}"):
                    found.append(f"{url}: {what}: {match.group(0)!r}")
        return found


def _sign_in(page, pages: Pages, username: str) -> None:
    page.goto("/console/dashboard")
    page.wait_for_url(re.compile(r"/console/sign-in"))
    pages.look(page)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/console/(dashboard|flags|todo)"))


def _flag_ids(page) -> list[int]:
    return [int(i) for i in page.locator("#flag-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.flagId)")]


def _choose_reason(page, select: str, to: str, code: str) -> None:
    """Picks the reason offered for this decision (the same reason may be listed under another, disabled)."""
    option = page.locator(f'{select} option[data-for="{to}"][value="{code}"]')
    page.select_option(select, element=option.element_handle())


def _phone(context_factory, url: str, pages: Pages, name: str, sign_in_as: str) -> None:
    context = context_factory(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
    page = context.new_page()
    try:
        _sign_in(page, pages, sign_in_as)
        page.goto(url)
        pages.look(page, name)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{url} is {width} px wide at 390 px"
    finally:
        context.close()


def test_each_role_works_a_day_on_the_demo_county(demo, browser) -> None:
    from playwright.sync_api import expect

    base_url, engine = demo
    faces = default_faces_dir() is not None
    pages = Pages()

    def new_context(**kwargs):
        return browser.new_context(base_url=base_url, **{"locale": "zh-CN", "viewport": {"width": 1280,
                                                                                       "height": 900}, **kwargs})

    with Session(engine) as db:
        first_hospital = db.exec(select(func.min(Hospital.id))).one()  # the demo's hospital1 user works there
        overdue_by_ward = Counter(db.exec(
            select(Admission.ward_id).join(Flag, col(Flag.admission_id) == Admission.id)
            .where(col(Flag.kind).in_([FlagKind.OVERDUE, FlagKind.DEVICE_OFFLINE]), Flag.status == FlagStatus.OPEN,
                   Flag.hospital_id != first_hospital)))
        impersonated = list(db.exec(select(Flag).where(Flag.kind == FlagKind.IMPERSONATED)
                                    .order_by(col(Flag.id))))
        assert db.exec(select(func.count()).select_from(Flag).where(Flag.hospital_id == first_hospital)).one()
    assert overdue_by_ward and impersonated
    silent_ward, silent_count = overdue_by_ward.most_common(1)[0]

    # --- the reviewer -------------------------------------------------------------------------------------
    context = new_context()
    page = context.new_page()
    _sign_in(page, pages, "reviewer")
    page.click('a[data-nav="flags"]')
    page.wait_for_selector("#flag-table")
    pages.look(page, "01-reviewer-queue")
    assert "疑点队列" in page.title()
    kinds = page.locator("#flag-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    # The default view puts fraud first: the silent wards' overdue flags come after every impersonation.
    assert kinds[0] == "impersonated" and "overdue" in kinds
    assert max(i for i, k in enumerate(kinds) if k == "impersonated") < kinds.index("overdue")
    assert set(page.locator("#flag-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.status)")) <= {
        "open", "first_reviewed", "appealed"}

    # With real faces, a bed the demo gave real photos (an enrolled thumbnail to show beside the crop); other
    # impersonations are synthetic faces far from the billed person's.
    target = impersonated[0]
    if faces:
        with Session(engine) as db:
            photographed = set(db.exec(select(FaceEmbedding.insured_person_id).where(
                col(FaceEmbedding.thumbnail_jpeg).is_not(None), FaceEmbedding.is_active == True)))  # noqa: E712
        target = next(f for f in impersonated if f.insured_person_id in photographed)
        # The evidence check names the face in the bed; the demo's evidence workers may still be at it.
        deadline = time.monotonic() + 300
        while True:
            with Session(engine) as db:
                if "naming" in (db.get(Flag, target.id).details or {}):
                    break
            assert time.monotonic() < deadline, "the evidence check did not name the impostor within 5 minutes"
            time.sleep(2)
    with Session(engine) as db:
        person = db.get(InsuredPerson, target.insured_person_id)
    page.fill("#f-q", person.insurance_number)
    page.press("#f-q", "Enter")
    page.wait_for_url(re.compile(r"q="))
    assert _flag_ids(page) and all(person.insurance_number in row for row in page.locator(
        "#flag-table tbody tr").all_inner_texts())
    assert target.id in _flag_ids(page)
    pages.look(page, "02-search-by-insurance-number")

    page.goto("/console/flags?kind=impersonated&status=actionable&sort=created")
    page.click(f'#flag-table tr[data-flag-id="{target.id}"] a.open')
    expect(page.locator("#flag-status")).to_have_attribute("data-status", "open")
    shown = page.locator("p.muted time").first.inner_text()
    assert shown == as_local(target.created_at, "Asia/Shanghai").strftime("%Y-%m-%d %H:%M:%S")
    assert shown != target.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")  # 8 hours ahead of UTC
    assert page.locator("#distance-note").inner_text().startswith("高于阈值")
    # A first review recommends (建议确认 / 建议排除); no recommendation is chosen for the reviewer.
    assert page.locator("#to-recommend_confirm").is_checked() is False
    assert page.locator("#reason").input_value() == ""
    if faces:
        # The enrolled photo and the crop side by side at the same size, above the fold at 1366x900.
        enrolled = page.locator("#enrolled-photo").evaluate("i => [i.naturalWidth, i.getBoundingClientRect()]")
        crop = page.locator("#captured-crop").evaluate("i => [i.naturalWidth, i.getBoundingClientRect()]")
        assert enrolled[0] > 0 and crop[0] > 0
        assert abs(enrolled[1]["width"] - crop[1]["width"]) < 1 and enrolled[1]["top"] == crop[1]["top"]
        named = page.locator("figure.named")
        expect(named.first).to_be_visible()
        assert named.first.locator(".named-name").inner_text().strip()
        assert "医保编号" in named.first.inner_text()
        assert named.first.locator("img").evaluate("i => i.naturalWidth") > 0
        page.click("#captured-crop")
        expect(page.locator("#zoom-dialog")).to_be_visible()
        # The zoom shows the pair, enrolled beside captured, each larger than on the page.
        widths = page.locator("#zoom-dialog img").evaluate_all("l => l.map(i => i.getBoundingClientRect().width)")
        assert len(widths) >= 2 and min(widths) > 180
        page.keyboard.press("Escape")
    pages.look(page, "03-impersonation-evidence")

    # "Other" without a comment: the error is beside the form, the choices made are still there.
    page.keyboard.press("1")
    page.select_option("#reason", "other")
    page.click("#submit-review")
    expect(page.locator("#form-error")).to_contain_text("其他")
    assert page.locator("#to-recommend_confirm").is_checked() and page.locator("#reason").input_value() == "other"
    pages.look(page, "04-other-needs-a-comment")

    # The session expires while a comment is being typed: signing in again brings the page back with it.
    page.keyboard.press("1")
    page.select_option("#reason", "face_mismatch")
    page.fill("#comment", "床上的人与登记照片明显不同")
    # The session ends on the server (expired or signed out elsewhere) while the browser still holds it.
    context.add_cookies([{"name": "bedcheck_session", "value": "expired.token", "url": base_url}])
    page.click("#submit-review")
    page.wait_for_url(re.compile(r"/console/sign-in\?next="))
    expect(page.locator("#sign-in-error")).to_be_visible()
    page.fill("#username", "reviewer")
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(rf"/console/flags/{target.id}"))
    expect(page.locator("#comment")).to_have_value("床上的人与登记照片明显不同")

    # Keyboard: 1 chooses the decision, Ctrl+Enter submits and opens the next flag of the queue.
    queue_ids = [f.id for f in impersonated if f.status == FlagStatus.OPEN]
    page.goto("/console/flags?kind=impersonated&status=open&sort=created")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/console/flags/{queue_ids[0]}\?"))
    page.keyboard.press("1")
    page.select_option("#reason", "face_mismatch")
    page.keyboard.press("Control+Enter")
    if len(queue_ids) > 1:
        page.wait_for_url(re.compile(rf"/console/flags/{queue_ids[1]}\?reviewed={queue_ids[0]}"))
        expect(page.locator("#reviewed-notice")).to_be_visible()
    else:
        page.wait_for_url(re.compile(r"/console/flags\?"))
    pages.look(page, "05-submitted-and-next")
    with Session(engine) as db:
        assert db.get(Flag, queue_ids[0]).status == FlagStatus.FIRST_REVIEWED

    # Bulk: one silent ward's unanswered flags go to final review at once (the supervisor dismisses them
    # below: two people), each through its own audited review.
    page.goto(f"/console/flags?ward_id={silent_ward}&status=open&per_page=200")
    ids = _flag_ids(page)
    assert len(ids) >= silent_count
    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text(str(len(ids)))
    page.select_option("#bulk-to", "recommend_dismiss")
    _choose_reason(page, "#bulk-reason", "recommend_dismiss", "device_fault")
    page.fill("#bulk-comment", "病区平板断电，核查期间离线")
    page.click("#bulk-submit")
    expect(page.locator("#bulk-result")).to_contain_text(f"已处理 {len(ids)} 条")
    pages.look(page, "06-bulk-first-review")
    # The first hospital's flags get a first look too, so that its insurance office may answer them.
    page.goto(f"/console/flags?hospital_id={first_hospital}&status=open&per_page=200")
    if _flag_ids(page):
        page.check("#select-all")
        page.select_option("#bulk-to", "recommend_confirm")
        _choose_reason(page, "#bulk-reason", "recommend_confirm", "evidence_clear")
        page.click("#bulk-submit")
        expect(page.locator("#bulk-result")).to_be_visible()

    with page.expect_download() as download:
        page.click("#export-xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert [c.value for c in sheet[1]][:8] == ["疑点号", "类型", "状态", "医院", "病区", "床位", "参保人", "医保编号"]
    assert sheet.freeze_panes == "A2"

    page.goto(f"/console/flags/{target.id}")
    page.click("#insured-person a")
    expect(page.locator("#person-name")).to_have_text(person.name)
    expect(page.locator("#person-flags")).to_contain_text(str(target.id))
    if faces:
        page.wait_for_function("() => [...document.querySelectorAll('.person-photo')].every(i => i.complete)")
        assert page.locator(".person-photo").first.evaluate("i => i.naturalWidth") > 0
    pages.look(page, "07-person")

    for path, status in (("/console/nope", 404), ("/console/sign-out", 405)):
        response = page.goto(path)
        assert response is not None and response.status == status
        expect(page.locator('a[data-nav="flags"]')).to_be_visible()  # the navigation bar is there
        assert "{" not in page.locator("main").inner_text()
        pages.look(page, f"08-error-{status}")
    page.goto(f"/console/flags/{target.id}?lang=en")
    pages.look(page, "09-flag-in-english")
    page.goto("/console/flags?lang=zh")
    context.close()

    # --- the supervisor -----------------------------------------------------------------------------------
    context = new_context()
    page = context.new_page()
    _sign_in(page, pages, "supervisor")
    page.goto(f"/console/flags/{queue_ids[0]}")
    expect(page.locator("#review-level")).to_have_text("终审")
    reasons = page.locator("#reason option[data-for='dismissed']").evaluate_all("os => os.map(o => o.value)")
    assert "evidence_clear" not in reasons and "appeal_accepted" not in reasons  # only reasons that fit
    page.check("#to-confirmed")
    assert page.locator("#reason option[value='false_match']").is_hidden()
    page.select_option("#reason", "evidence_clear")
    page.click("#submit-review")
    expect(page.locator("#flag-status")).to_have_attribute("data-status", "confirmed")
    expect(page.locator('#timeline li[data-event="ev_to_confirmed"]')).to_be_visible()
    pages.look(page, "10-final-review-timeline")

    page.goto(f"/console/flags?ward_id={silent_ward}&status=first_reviewed&per_page=200")
    assert sorted(_flag_ids(page)) == sorted(ids)
    page.check("#select-all")
    page.select_option("#bulk-to", "dismissed")
    _choose_reason(page, "#bulk-reason", "dismissed", "device_fault")
    page.click("#bulk-submit")
    expect(page.locator("#bulk-result")).to_contain_text(f"已处理 {len(ids)} 条")
    pages.look(page, "10b-bulk-dismissed")
    with Session(engine) as db:
        assert {db.get(Flag, i).status for i in ids} == {FlagStatus.DISMISSED}
        audited = list(db.exec(select(AuditRecord.object_id).where(
            AuditRecord.action == "flag.transition", col(AuditRecord.object_id).in_([str(i) for i in ids]))))
        assert len(audited) == 2 * len(ids)  # every flag, both reviews
        assert db.exec(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.action == "flag.bulk_review")).one() >= 2

    page.click('a[data-nav="launch"]')
    names = page.locator("#hospitals input").evaluate_all("bs => bs.map(b => b.dataset.name)")
    assert names == sorted(names, key=natural_key) and len(names) == 12
    with Session(engine) as db:
        silent_hospital = db.exec(select(Admission.hospital_id).where(Admission.ward_id == silent_ward)).first()
        offline = set(db.exec(select(Flag.hospital_id).where(Flag.kind == FlagKind.OVERDUE)))
        answering = next(h for h in db.exec(select(Hospital.id).order_by(col(Hospital.id))) if h not in offline)
    silent_name = page.locator(f'#hospitals input[value="{silent_hospital}"]').get_attribute("data-name")
    other_name = page.locator(f'#hospitals input[value="{answering}"]').get_attribute("data-name")
    for name in (silent_name, other_name):
        page.fill("#hospital-search", name)
        expect(page.locator("#hospitals li:not([hidden])")).to_have_count(
            sum(1 for n in names if name.lower() in n.lower()))
        page.locator(f'#hospitals input[data-name="{name}"]').check()
    expect(page.locator("#picked-count")).to_have_text("2")
    assert page.locator("#scope-hospitals").is_checked()
    page.fill("#deadline", "1")
    pages.look(page, "11-launch")
    page.click("#launch")
    expect(page.locator("#launch-beds")).to_be_visible()  # the scope and its beds, confirmed before launch
    pages.look(page, "11b-launch-confirm")
    page.click("#confirm-launch")
    page.wait_for_url(re.compile(r"/console/dashboard\?campaign_id=\d+"))
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^[01]:\d\d$"))
    # The demo's devices still run: the new check is answered, except the silent ward, which is named
    # well before the one-minute deadline.
    expect(page.locator("#not-answering")).to_be_visible(timeout=30_000)
    expect(page.locator("#not-answering")).to_contain_text(silent_name)
    assert int(page.locator("#done").inner_text()) > 0
    header = page.locator("#by-hospital thead").inner_text()
    assert all(word in header for word in ("不在床", "冒名", "活体未过"))
    pages.look(page, "12-running-check")
    page.click('#by-hospital th[data-sort-key="overdue"]')
    overdue = [int(v) for v in page.locator("#by-hospital td.h-overdue").evaluate_all(
        "cells => cells.map(c => c.dataset.value)")]
    assert overdue == sorted(overdue, reverse=True) and len(overdue) == 2
    expect(page.locator("#ended")).to_have_text("截止时结束", timeout=90_000)
    expect(page.locator("#timed-out-summary")).to_contain_text("未应答")
    pages.look(page, "13-ended-at-deadline")

    page.click('a[data-nav="statistics"]')
    expect(page.locator("svg.chart.trend")).to_be_visible()
    assert page.locator("#ranking-table, table.grid").count() >= 1
    pages.look(page, "13b-statistics")
    context.close()

    # --- the hospital's insurance office ------------------------------------------------------------------
    context = new_context()
    page = context.new_page()
    _sign_in(page, pages, "hospital1")
    page.click('a[data-nav="todo"]')
    rows = page.locator("#todo-table tbody tr")
    expect(rows.first).to_be_visible()
    assert re.fullmatch(r"[67] 天", rows.first.locator(".days-left").inner_text())
    pages.look(page, "14-hospital-todo")
    flag_id = int(rows.first.get_attribute("data-flag-id"))
    rows.first.locator("a").first.click()
    expect(page.locator("#appeal-deadline")).to_be_visible()
    page.fill("#statement", "该患者当时在放射科做检查，附检查单。")
    page.set_input_files("#attachments", files=[{"name": "检查单.pdf", "mimeType": "application/pdf",
                                                 "buffer": b"%PDF-1.4\n% exam slip\n"}])
    page.click("#submit-appeal")
    expect(page.locator("#flag-status")).to_have_attribute("data-status", "appealed")
    expect(page.locator('#timeline li[data-event="ev_appeal_filed"]')).to_be_visible()
    pages.look(page, "15-hospital-appealed")
    page.goto("/console/todo")
    assert f'data-flag-id="{flag_id}"' not in page.content()
    context.close()

    for url, name, who in ((f"/console/flags/{target.id}", "16-phone-flag", "reviewer"),
                           ("/console/flags", "17-phone-queue", "reviewer"),
                           ("/console/dashboard", "18-phone-dashboard", "supervisor"),
                           ("/console/statistics", "18b-phone-statistics", "supervisor"),
                           ("/console/todo", "19-phone-todo", "hospital1")):
        _phone(new_context, url, pages, name, who)

    titles = {title for title, _ in pages.seen.values()}
    assert len(titles) >= 10  # every kind of page has its own title
    raw = pages.raw_values()
    assert not raw, "\n".join(raw)
