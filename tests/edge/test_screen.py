"""The nurse's page: lists beds and open tasks, marks a bed empty or a patient exempt offline, refuses
requests that do not come from the device itself."""

from __future__ import annotations

import httpx
import pytest

from edge_client.config import EdgeSettings
from edge_client.credentials import Credentials, save_credentials
from edge_client.device import Device
from edge_client.screen import ScreenServer, create_screen_app
from models.wire import TaskBatch
from tests.edge.helpers import roster, task


@pytest.fixture
def screen(tmp_path):
    settings = EdgeSettings(state_dir=tmp_path / "edge", screen_enabled=False)
    # Nothing listens on port 9: the screen works from the outbox alone, offline.
    save_credentials(settings.credentials_path, Credentials(server_url="http://127.0.0.1:9", device_id=1,
                                                            token="x" * 20, hospital_id=1, ward_id=1))
    device = Device(settings)
    tasks = [task(1, "01", 11), task(2, "02", 12), task(3, "03", 13)]
    device.outbox.save_roster(roster(*tasks))
    device.outbox.store_tasks(TaskBatch(server_time=tasks[0].issued_at, tasks=tasks))
    # A real server on loopback: the screen's guard looks at what a browser really sends.
    server = ScreenServer(create_screen_app(device, settings), "127.0.0.1", 0)
    server.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
        yield client, device
    server.stop()
    device.close()


def test_page_lists_beds_and_pending_checks_without_faces(screen) -> None:
    client, _ = screen
    page = client.get("/")
    assert page.status_code == 200 and page.text.count("pending check") == 3 and "张*" in page.text
    assert "<img" not in page.text


def test_nurse_marks_a_bed_empty_and_a_patient_exempt(screen) -> None:
    client, device = screen
    assert client.post("/beds/01/empty", data={"note": "went home"}, follow_redirects=False).status_code == 303
    assert client.post("/beds/02/exempt", data={"reason": "surgery", "note": "OR 3"},
                       follow_redirects=False).status_code == 303
    results = {r.bed_label: r for r in device.outbox.results()}
    assert results["01"].local_verdict == "absent" and results["01"].upload().note == "went home"
    assert results["02"].local_verdict == "exempt" and results["02"].upload().note == "exempt:surgery OR 3"
    assert [t.bed_label for t in device.outbox.open_tasks()] == ["03"]
    # Answered already, and offline no new task can be asked for: refused, nothing stored.
    again = client.post("/beds/01/empty", data={"note": "again"}, follow_redirects=False)
    assert again.status_code == 422 and "no pending task" in again.json()["detail"]
    assert len(device.outbox.results()) == 2


def test_unknown_bed_and_bad_reason_are_client_errors(screen) -> None:
    client, _ = screen
    assert client.post("/beds/99/empty", data={}).status_code == 422
    assert client.post("/beds/03/exempt", data={"reason": "holiday"}).status_code == 422


def test_requests_from_another_site_are_refused(screen) -> None:
    client, device = screen
    cross_site = client.post("/beds/01/empty", data={}, headers={"origin": "https://evil.example"})
    rebound = client.post("/beds/01/empty", data={}, headers={"host": "evil.example"})
    assert cross_site.status_code == rebound.status_code == 403
    assert device.outbox.results() == []
