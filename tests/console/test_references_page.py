"""The bed-reference approval page in headless Chromium at a phone's 390 px: a hospital's tablet takes two
references (one a room at home); a reviewer sees each frame with who took it and when, approves one and
rejects the other, each audited; the bed left without an approved reference is one setup task on the page and
the dashboard. Hospital staff cannot open the page. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import base64
import re
from contextlib import closing
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models.faces import crop_to_jpeg
from models.wire import DEVICE_PREFIX
from server.audit.tables import AuditRecord
from server.places.tables import BedReference
from server.simulation.scenes import bed_seed, render_room
from tests.console import helpers

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
    # The page's rules run on both engines through the API in tests/server/test_evidence_once.py.
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def planted(engine, live_server):
    """Hospital 1's ward: bed 1 and 2 lose their references; its tablet takes bed 1's real room and a room at
    home for bed 2."""
    with Session(engine, expire_on_commit=False) as db:
        world = helpers.build(db)
        ward = select(BedReference).where(BedReference.ward_id == world.ward_ids[0])
        beds = sorted({r.bed_id for r in db.exec(ward)})
        for reference in db.exec(select(BedReference).where(BedReference.bed_id.in_(beds[:2]))):
            db.delete(reference)
        db.commit()
    server = live_server()
    ids = []
    with closing(helpers.pair(server.url, world.codes[0])) as device:
        for bed_id, image in ((beds[0], render_room(bed_seed(beds[0]))),
                              (beds[1], render_room(bed_seed(beds[1]) + 7_000_000, home=True))):
            sent = device.post(f"{DEVICE_PREFIX}/beds/{bed_id}/references",
                               json={"scene_jpeg_b64": base64.b64encode(crop_to_jpeg(image)).decode()})
            assert sent.json()["status"] == "pending"
            ids.append(sent.json()["reference_id"])
    return server, ids


def _sign_in(page, username: str) -> None:
    page.goto("/console/dashboard")
    page.fill("#username", username)
    page.fill("#password", helpers.factories.PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/console/dashboard"))


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide at 390 px"


def test_a_reviewer_approves_one_reference_and_rejects_the_planted_one_at_390_px(planted, engine, browser) -> None:
    from playwright.sync_api import expect

    server, (real, home) = planted
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=server.url, locale="zh-CN", viewport=PHONE, is_mobile=True)
    page = context.new_page()
    try:
        _sign_in(page, "rev")
        setup = page.locator("#setup-places")
        expect(setup).to_contain_text("2 个床位（1 个病区）尚无批准的参考图")
        _fits(page)
        page.click("#setup-places a")
        page.wait_for_url(re.compile(r"/console/references"))
        cards = page.locator("article.reference")
        expect(cards).to_have_count(2)
        card = page.locator(f'article[data-reference-id="{real}"]')
        expect(card.locator(".taken-by")).to_contain_text("tablet")
        expect(card.locator(".taken-by")).to_contain_text("病区平板")
        expect(card.locator("time")).to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$"))
        assert card.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
        _fits(page)
        page.screenshot(path=str(SCREENSHOTS / "references-pending-390.png"), full_page=True)
        card.locator('input[name="note"]').fill("与床位一致")
        card.locator('button[value="approve"]').click()
        expect(page.locator("#reference-done")).to_have_text("已批准参考图")
        page.locator(f'article[data-reference-id="{home}"] button[value="reject"]').click()
        expect(page.locator("#reference-done")).to_have_text("已驳回参考图")
        expect(page.locator("#references-empty")).to_be_visible()
        expect(page.locator("#setup li")).to_have_count(1)  # bed 2 still has no approved reference
        _fits(page)
        page.screenshot(path=str(SCREENSHOTS / "references-decided-390.png"), full_page=True)
        page.goto("/console/dashboard")
        expect(page.locator("#setup-places")).to_contain_text("1 个床位（1 个病区）")
    finally:
        context.close()
    staff = browser.new_context(base_url=server.url, locale="zh-CN", viewport=PHONE, is_mobile=True)
    try:
        page = staff.new_page()
        _sign_in(page, "staff1")
        expect(page.locator('nav a[data-nav="references"]')).to_have_count(0)
        response = page.goto("/console/references")
        assert response is not None and response.status == 403
    finally:
        staff.close()
    with Session(engine) as db:
        decided = {r.id: (r.status.value, r.is_active, r.decision_note) for r in
                   db.exec(select(BedReference).where(BedReference.id.in_([real, home])))}
        assert decided == {real: ("approved", True, "与床位一致"), home: ("rejected", False, "")}
        audited = {(a.action, a.object_id) for a in db.exec(select(AuditRecord).where(
            AuditRecord.action.in_(["place.reference_approved", "place.reference_rejected"])))}
        assert audited == {("place.reference_approved", str(real)), ("place.reference_rejected", str(home))}
