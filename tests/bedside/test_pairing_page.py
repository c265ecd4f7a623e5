"""A supervisor makes a pairing in the console (ward, expiry), shown as a QR code and a short code; the link
in the QR code pairs a tablet's browser in one tap, once."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlmodel import Session

from server.accounts.tables import Role
from tests import factories
from tests.bedside.conftest import CHROMIUM
from tests.console import helpers

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def test_a_pairing_made_in_the_console_pairs_a_tablet_through_its_qr_link(engine, live_server,
                                                                          launch_chromium) -> None:
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a", "b"])
        factories.user(db, "sup", Role.SUPERVISOR)
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
    server = live_server()
    browser = launch_chromium()
    console = browser.new_context(base_url=server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
                                  timezone_id="Asia/Shanghai").new_page()
    console.goto("/console/bedside-pairing")
    console.fill("#username", "sup")
    console.fill("#password", factories.PASSWORD)
    console.click("#sign-in")
    console.goto("/console/bedside-pairing")
    console.click("#pairing-create")  # no ward chosen: said beside the field, nothing created
    console.wait_for_selector("#pairing-ward-error:has-text('请选择病区')")
    console.select_option("#pairing-ward", str(world.ward_ids[0]))
    console.click("#pairing-create")
    console.wait_for_selector("#pairing-result svg.qr")
    code = console.inner_text("#pairing-code").strip()
    assert re.fullmatch(r"[0-9A-F]{10}", code)
    link = console.inner_text("#pairing-result .break").strip()
    assert link.endswith(f"/bedside/?code={code}")
    assert "北京时间" in console.inner_text("#pairing-result")
    assert console.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    tablet = browser.new_context(locale="zh-CN", viewport={"width": 800, "height": 1280}).new_page()
    tablet.goto(link)
    tablet.click("#pair-submit")
    tablet.wait_for_selector("#beds li")
    again = browser.new_context(locale="zh-CN").new_page()
    again.goto(link)
    again.click("#pair-submit")
    again.wait_for_selector("#pair-error:has-text('配对码无效')")  # single use

    staff = helpers.sign_in(server.url, "staff1")
    try:
        assert staff.get("/console/bedside-pairing").status_code == 403
    finally:
        staff.close()
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/console/bedside-pairing", follow_redirects=False).status_code in (303, 307, 401)
