"""The must-show in real headless Chromium (Debian's chromium driven by Playwright) against a live server:
a supervisor launches a spot check (confirming its number of beds), watches it complete; a reviewer makes
the first reviews and the supervisor the final ones (confirms one flag, dismisses another); once the check's
deadline has passed, a hospital user appeals a flag and cannot see another hospital's flags.
Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from server.audit.service import verify
from server.audit.tables import AuditRecord
from server.campaigns.tables import Campaign
from server.db import utcnow
from server.flags.tables import Flag
from tests.console import helpers

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
    # The browser flow is the same on both engines; its API scope checks run on both in test_console_http.py.
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _sign_in(page, username: str) -> None:
    page.goto("/console/dashboard")
    assert "/console/sign-in" in page.url
    page.fill("#username", username)
    page.fill("#password", helpers.factories.PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(re.compile(r"/console/dashboard"))


def _review(page, to: str, reason: str, comment: str = "", status: str | None = None) -> None:
    page.check(f"#to-{to}")
    page.select_option("#reason", reason)
    page.fill("#comment", comment)
    page.click("#submit-review")
    page.wait_for_selector(f'#flag-status[data-status="{status or to}"]')


def test_supervisor_runs_a_spot_check_and_reviews_then_a_hospital_appeals(engine, live_server, browser) -> None:
    from playwright.sync_api import expect

    with Session(engine, expire_on_commit=False) as db:
        world = helpers.build(db)
    h1, h2 = world.hospital_ids
    server = live_server(run_scheduler=True, sweep_interval_s=0.3)
    fleet = helpers.DeviceFleet(server.url, world)
    context = browser.new_context(base_url=server.url, locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        _sign_in(page, "sup")
        page.click('a[data-nav="launch"]')
        page.select_option("#county", world.county)
        page.fill("#deadline", "10")
        page.click("#launch")
        expect(page.locator("#launch-beds")).to_have_text("6")  # the choice shown back with its beds
        page.click("#confirm-launch")
        page.wait_for_url(re.compile(r"/console/dashboard\?campaign_id=\d+"))
        expect(page.locator("#campaign-status")).to_have_text("进行中")
        expect(page.locator("#done")).to_have_text("0")
        _shot(page, "01-spot-check-launched")

        fleet.start()  # ward tablets answer over HTTP; the page polls and shows the campaign complete
        expect(page.locator("#campaign-status")).to_have_text("已完成", timeout=30_000)
        expect(page.locator("#done")).to_have_text("6")
        expect(page.locator("#rate")).to_have_text("33.3%")
        expect(page.locator('#chart [data-count="absent"]')).to_have_text("2")
        _shot(page, "02-spot-check-completed")
        campaign_id = int(page.locator("#campaign-id").inner_text())

        page.click('a[data-nav="flags"]')  # 我的待办 of a supervisor: nothing reviewed yet, nothing to decide
        expect(page.locator("#flag-total")).to_have_text("0")
        page.select_option("#f-status", "all")
        page.click("#apply-filters")
        page.wait_for_selector("#flag-table")
        kinds = page.locator("#flag-table tr[data-flag-id]").evaluate_all("rows => rows.map(r => r.dataset.kind)")
        # The evidence check may add its own flags (our stand-in crops hold no face); these four are the verdicts'.
        assert sorted(k for k in kinds if k in ("absent", "impersonated")) == ["absent"] * 2 + ["impersonated"] * 2
        page.select_option("#f-hospital", str(h1))
        page.select_option("#f-kind", "impersonated")
        page.click("#apply-filters")
        rows = page.locator("#flag-table tr[data-flag-id]")
        expect(rows).to_have_count(1)
        _shot(page, "03-flag-queue-filtered")
        rows.first.locator("a.open").click()
        confirmed_url = page.url
        absent_url = f"/console/flags?hospital_id={h1}&kind=absent&campaign_id={campaign_id}"
        page.click("#sign-out")
        page.wait_for_url(re.compile(r"/console/sign-in"))

        _sign_in(page, "rev")  # first review: a reviewer
        page.goto(confirmed_url)
        expect(page.locator("#captured-crop")).to_be_visible()
        assert page.eval_on_selector("#captured-crop", "img => img.naturalWidth") > 0
        assert page.eval_on_selector("#enrolled-photo", "img => img.naturalWidth") > 0
        expect(page.locator("#review-level")).to_have_text("初审")
        # First review recommends (建议确认); the final review decides.
        _review(page, "recommend_confirm", "face_mismatch", "床上不是登记的参保人", status="first_reviewed")
        expect(page.locator("#awaiting-other-reviewer")).to_be_visible()  # the final review is another person's
        page.goto(absent_url)
        page.locator("#flag-table tr[data-flag-id] a.open").first.click()
        dismissed_url = page.url
        _review(page, "recommend_dismiss", "valid_exemption", "外出检查，有检查单", status="first_reviewed")
        page.click("#sign-out")
        page.wait_for_url(re.compile(r"/console/sign-in"))

        _sign_in(page, "sup")  # final review: another person
        page.goto(confirmed_url)
        expect(page.locator("#review-level")).to_have_text("终审")
        _review(page, "confirmed", "evidence_clear")
        _shot(page, "04-flag-confirmed")
        page.goto(dismissed_url)
        _review(page, "dismissed", "valid_exemption", "外出检查，有检查单")
        _shot(page, "05-flag-dismissed")
        page.click("#sign-out")
        page.wait_for_url(re.compile(r"/console/sign-in"))
        with Session(engine) as db:  # the unannounced check's deadline passes: the hospitals may now see it
            campaign = db.get(Campaign, campaign_id)
            campaign.deadline_at = utcnow() - timedelta(seconds=1)
            db.add(campaign)
            db.commit()

        _sign_in(page, "staff1")
        page.click('a[data-nav="flags"]')
        hospitals = page.locator("#flag-table tr[data-flag-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.hospitalId)")
        assert hospitals and set(hospitals) == {str(h1)}
        page.goto(confirmed_url)
        expect(page.locator("#appeal-form")).to_be_visible()
        page.fill("#statement", "该患者当时在放射科做检查，附检查单。")
        page.set_input_files("#attachments", files=[{"name": "检查单.pdf", "mimeType": "application/pdf",
                                                     "buffer": b"%PDF-1.4\n% exam slip\n"}])
        page.click("#submit-appeal")
        page.wait_for_selector('#flag-status[data-status="appealed"]')
        expect(page.locator(".appeal .statement")).to_contain_text("放射科")
        _shot(page, "06-hospital-appeal-filed")

        with Session(engine) as db:
            theirs = db.exec(select(Flag.id).where(Flag.hospital_id == h2)).first()
        response = page.goto(f"/console/flags/{theirs}")
        assert response is not None and response.status == 404
        _shot(page, "07-other-hospital-flag-not-found")
        assert page.request.get(f"/api/v1/flags/{theirs}").status == 404
        assert page.request.get(f"/console/flags/{theirs}/crop.jpg").status == 404
        assert page.goto(f"/console/flags?hospital_id={h2}").status == 404

        page.goto("/console/flags")
        page.click("#lang-switch")
        expect(page.locator('a[data-nav="flags"]')).to_have_text("Flag queue")
        _shot(page, "08-english")
    finally:
        context.close()
        fleet.close()
    assert fleet.errors == []
    with Session(engine) as db:
        actions = set(db.exec(select(AuditRecord.action)))
        assert {"campaign.created", "flag.transition", "appeal.filed", "user.signed_in"} <= actions
        assert verify(db)[1] == []
