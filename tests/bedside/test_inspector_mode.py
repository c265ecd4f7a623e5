"""移动稽查: a bureau supervisor signs in on a phone, starts an unannounced check of a ward and checks its beds;
the check and its results are the inspector's device's alone, never the hospital's."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlmodel import Session, col, select

from server.accounts.tables import Role
from server.campaigns.tables import Campaign, CheckTask
from server.checks.tables import CheckResult
from server.devices.tables import Device
from tests import factories
from tests.bedside.conftest import CHROMIUM
from tests.bedside.test_bedside_board import _no_horizontal_scroll, _visible_text_is_words

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
]


def _ward_device(base_url: str, code: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post("/api/v1/device/pair", json={"code": code, "name": "ward tablet"}).raise_for_status().json()
    client.headers["authorization"] = f"Bearer {token['token']}"
    return client


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_inspector_starts_an_on_site_check_and_its_results_are_the_inspectors(engine, live_server,
                                                                               launch_chromium) -> None:
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a", "b", "c"])
        code = factories.pairing_code(db, world.ward_ids[0])
        inspector = factories.user(db, "inspector1", Role.SUPERVISOR)
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
    server = live_server()
    tablet = _ward_device(server.url, code)
    page = launch_chromium().new_context(base_url=server.url, locale="zh-CN", viewport={"width": 390, "height": 844},
                                         timezone_id="Asia/Shanghai").new_page()
    page.goto("/bedside/")
    page.click("#to-inspect")
    page.fill("#insp-user", "inspector1")
    page.fill("#insp-pass", "wrong-password-1")
    page.click("#insp-sign-in")
    page.wait_for_selector("#insp-error:has-text('用户名或密码不正确')")
    page.fill("#insp-pass", factories.PASSWORD)
    page.click("#insp-sign-in")
    page.wait_for_selector("#insp-target")
    page.select_option("#insp-ward", str(world.ward_ids[0]))
    _no_horizontal_scroll(page)
    page.click("#insp-start")
    page.wait_for_selector("#beds li[data-state='pending']")
    assert "移动稽查" in page.inner_text("main")
    _no_horizontal_scroll(page)
    _visible_text_is_words(page)

    # The hospital's own tablet is not told of the inspection and cannot answer it.
    assert tablet.get("/api/v1/device/tasks").json()["tasks"] == []
    with Session(engine) as db:
        campaign = db.exec(select(Campaign).where(col(Campaign.inspector_device_id).is_not(None))).one()
        device = db.get(Device, campaign.inspector_device_id)
        assert device is not None and device.kind == "inspector" and device.owner_user_id == inspector.id
        task = db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id)).first()
        assert task is not None and campaign.task_count == 3
    refused = tablet.post("/api/v1/device/results", json={
        "idempotency_key": "tablet-answers-inspection", "task_id": task.id, "nonce": task.nonce,
        "outcome": "bed_empty", "captured_at": datetime.now(UTC).isoformat()})
    assert refused.status_code in (403, 404, 409) and refused.json()["code"] == "task_not_for_device"

    label = page.eval_on_selector_all("#beds li", "els => els[0].dataset.bed")
    page.click(f'#beds li[data-bed="{label}"] button')
    page.click("#bed-empty")
    page.wait_for_selector(".msg-ok")
    with Session(engine) as db:
        result = db.exec(select(CheckResult)).one()
        assert result.device_id == device.id
        assert db.get(CheckTask, result.task_id).campaign_id == campaign.id  # type: ignore[union-attr]

    # Hospital staff see neither the inspector's device nor the running check.
    with httpx.Client(base_url=server.url, timeout=30) as staff:
        token = staff.post("/api/v1/auth/token", json={"username": "staff1", "password": factories.PASSWORD}).json()
        staff.headers["authorization"] = f"Bearer {token['access_token']}"
        assert [d["id"] for d in staff.get("/api/v1/devices").json()] == [tablet_id(engine)]
    tablet.close()


def tablet_id(engine) -> int:
    with Session(engine) as db:
        return db.exec(select(Device.id).where(Device.kind == "ward")).one()


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_inspections_are_for_bureau_supervisors_only(engine, live_server) -> None:
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a"])
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
        factories.user(db, "rev1", Role.REVIEWER)
    server = live_server()
    for username in ("staff1", "rev1"):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            token = client.post("/api/v1/auth/token",
                                json={"username": username, "password": factories.PASSWORD}).json()
            client.headers["authorization"] = f"Bearer {token['access_token']}"
            answer = client.post("/api/v1/inspections", json={"hospital_id": world.hospital_ids[0]})
            assert answer.status_code == 403, answer.text
            assert client.get("/api/v1/inspections/targets").status_code == 403
