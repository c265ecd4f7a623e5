"""Pairing a browser by its code, the ward board in words, and the outbox that survives being offline and a
reload, delivering each result exactly once (the must-show of issue 27 that needs no camera)."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, col, select

from server.campaigns import service as campaign_service
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.devices.tables import Device
from tests import factories
from tests.bedside.conftest import CHROMIUM, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

RAW = re.compile(r"\b(pending|verified|flagged|absent|overdue|on_leave|exempt|idle|waiting|None|null|undefined|"
                 r"nonce_replayed|bed_empty)\b|\d{4}-\d{2}-\d{2}T\d{2}:")


def _world(engine, beds: int = 3):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=[f"p{i}" for i in range(beds)])
        code = factories.pairing_code(db, world.ward_ids[0])
        campaign = campaign_service.create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=1800,
                                                    actor="test")
    return world, code, campaign


def _pair(page, code: str) -> None:
    page.goto(f"/bedside/?code={code}")
    page.wait_for_selector("#pair-code")
    assert page.input_value("#pair-code") == code
    page.click("#pair-submit")
    page.wait_for_selector("#beds li")


def _no_horizontal_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def _visible_text_is_words(page) -> None:
    text = page.inner_text("body")
    assert not RAW.search(text), RAW.search(text)


def test_pairing_by_code_then_the_board_in_words_at_390px(engine, live_server, launch_chromium) -> None:
    world, code, _ = _world(engine)
    server = live_server()
    browser = launch_chromium()
    page = browser.new_context(base_url=server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
                               timezone_id="Asia/Shanghai").new_page()
    # A wrong code is refused in words, beside the field, and what was typed stays.
    page.goto("/bedside/")
    page.fill("#pair-code", "WRONGCODE1")
    page.click("#pair-submit")
    page.wait_for_selector("#pair-error:has-text('配对码无效')")
    assert page.input_value("#pair-code") == "WRONGCODE1"

    _pair(page, code)
    states = page.eval_on_selector_all("#beds li", "els => els.map(e => e.dataset.state)")
    assert states == ["pending"] * 3
    assert page.locator("#beds li").first.inner_text().count("待核查") == 1
    assert "剩余" in page.inner_text("#beds")
    _no_horizontal_scroll(page)
    _visible_text_is_words(page)
    screenshot(page, "board-390")
    with Session(engine) as db:
        device = db.exec(select(Device).order_by(col(Device.id).desc())).first()
        assert device is not None and device.ward_id == world.ward_ids[0]


def test_offline_checks_wait_in_the_outbox_and_arrive_once_after_a_reload(engine, live_server,
                                                                          launch_chromium) -> None:
    _, code, campaign = _world(engine)
    server = live_server()
    browser = launch_chromium()
    context = browser.new_context(base_url=server.url, locale="zh-CN", viewport={"width": 1280, "height": 900},
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    _pair(page, code)
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null || "
                           "navigator.serviceWorker.ready.then(() => true)")
    page.evaluate("navigator.serviceWorker.ready")
    page.reload()  # the service worker now controls the page and has cached the shell
    page.wait_for_selector("#beds li")

    context.set_offline(True)
    for label in page.eval_on_selector_all("#beds li", "els => els.slice(0, 2).map(e => e.dataset.bed)"):
        page.click(f'#beds li[data-bed="{label}"] button')
        page.wait_for_selector("#bed-empty")
        page.click("#bed-empty")
        page.wait_for_selector(".msg-warn:has-text('联网后自动上传')")
        page.click("#back")
        page.wait_for_selector("#beds li")
    assert page.evaluate("window.bedside.pending().then(p => p.length)") == 2

    page.reload()  # offline: the shell comes from the service worker, the outbox from IndexedDB
    page.wait_for_selector("#outbox:not([hidden])")
    assert "待上传 2" in page.inner_text("#outbox")
    assert page.eval_on_selector_all("#beds li[data-state='waiting']", "els => els.length") == 2
    screenshot(page, "offline-outbox")
    with Session(engine) as db:
        assert db.exec(select(CheckResult)).all() == []

    context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_function("window.bedside.pending().then(p => p.length === 0)")
    page.evaluate("window.bedside.sync()")  # a second sync sends nothing more
    page.reload()
    page.wait_for_selector("#beds li")
    with Session(engine) as db:
        results = db.exec(select(CheckResult)).all()
        assert len(results) == 2
        assert len({r.task_id for r in results}) == 2
        tasks = db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id)).all()
        assert sorted(t.verdict.value for t in tasks) == ["absent", "absent", "pending"]
    assert sorted(page.eval_on_selector_all("#beds li", "els => els.map(e => e.dataset.state)")) == [
        "empty", "empty", "pending"]


def test_a_check_screen_at_390px_without_a_face_keeps_the_one_tap_choices(engine, live_server,
                                                                         launch_chromium) -> None:
    """Chromium's own fake camera (a moving test pattern, no face): the camera opens mirrored with the face
    guide, the app waits for a face in words, and bed empty / cannot take part stay one tap away."""
    _, code, _ = _world(engine, beds=2)
    server = live_server()
    browser = launch_chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
    page = browser.new_context(base_url=server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
                               timezone_id="Asia/Shanghai", permissions=["camera"]).new_page()
    _pair(page, code)
    page.click("#beds li:first-child button")
    page.wait_for_selector("#feedback:has-text('未检测到人脸')", timeout=60_000)
    assert page.inner_text("#prompt") == "请将面部置于框内"
    assert page.evaluate("document.getElementById('preview').videoWidth") > 0
    _no_horizontal_scroll(page)
    _visible_text_is_words(page)
    screenshot(page, "check-390")
    page.select_option("#unable-reason", "sedated")
    page.click("#cannot-take-part")
    assert "已记录无法配合" in page.inner_text("#feedback")
    page.click("text=取消")
    page.wait_for_selector("#beds li")
