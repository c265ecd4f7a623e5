"""Faults: the server dies in the middle of a sync, the device is SIGKILLed in the middle of an upload,
an ack is lost. Every result still reaches the server exactly once (counted in the server's database)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from edge_client.config import EdgeSettings
from edge_client.device import Device, pair_device
from edge_client.outbox import ResultState
from tests.edge.conftest import (
    build_ward,
    edge_env,
    image_folder,
    pairing_code,
    results_per_task,
    verdicts,
    wait_for,
)

pytestmark = [pytest.mark.faces, pytest.mark.slow]
BEDS = 10
FAST_RETRY = {"long_poll_s": 2, "sync_interval_s": 0.3, "retry_max_wait_s": 1, "offline_wait_s": 0.5,
              "heartbeat_interval_s": 2, "screen_enabled": "false"}


def outbox_states(state_dir: Path) -> dict[str, int]:
    path = state_dir / "outbox.sqlite3"
    if not path.exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            return dict(db.execute("SELECT state, COUNT(*) FROM result GROUP BY state").fetchall())
        except sqlite3.OperationalError:  # schema not created yet
            return {}


@pytest.fixture
def camera_ward(faces_dir, enroll, engine, tmp_path):
    """BEDS beds, each with a fixed camera (a folder holding one photo of its enrolled patient). A still shows
    no sign of life to a bed camera: each result goes to review (unrecognised), never to verified (issue 15)."""
    photos = sorted((faces_dir / "people" / "george_w_bush").glob("*"))
    ward = build_ward(engine, {f"p{i}": enroll("people/george_w_bush") for i in range(BEDS)})
    folder = image_folder(tmp_path, "bed_camera", photos[4:5])
    sources = {label: folder for label in ward.bed_labels.values()}
    return ward, sources


def _pair(env_dir: Path, url: str, engine, ward) -> None:
    pair_device(EdgeSettings(state_dir=env_dir), url, pairing_code(engine, ward.ward_id))


def _all_answered_once(engine, ward) -> bool:
    return results_per_task(engine) == {t: 1 for t in ward.task_ids.values()}


def test_server_killed_mid_sync_and_restarted_loses_and_duplicates_nothing(
        camera_ward, engine, server_process, edge_processes, tmp_path) -> None:
    ward, sources = camera_ward
    server = server_process()
    port = int(server.url.rsplit(":", 1)[1])
    state_dir = tmp_path / "edge"
    _pair(state_dir, server.url, engine, ward)
    edge = edge_processes(edge_env(state_dir, bed_sources=sources, **FAST_RETRY), tmp_path / "edge.log")

    wait_for(lambda: sum(results_per_task(engine).values()) >= 2, 120, "the first uploads")
    server.process.kill()  # mid-sync: the device is still checking beds and uploading
    server.process.wait(timeout=10)
    at_crash = sum(results_per_task(engine).values())
    assert at_crash < BEDS

    # Offline, the device goes on checking: every result lands in its outbox, waiting.
    wait_for(lambda: sum(outbox_states(state_dir).values()) == BEDS, 120, "every bed checked offline")
    assert outbox_states(state_dir).get(ResultState.SENT, 0) < BEDS
    time.sleep(2)  # a few failed retries

    server_process(port=port)
    wait_for(lambda: _all_answered_once(engine, ward), 120, "every result on the restarted server")
    wait_for(lambda: outbox_states(state_dir) == {ResultState.SENT: BEDS}, 60, "every result acknowledged")
    assert set(verdicts(engine).values()) == {"unrecognised"}
    assert edge.terminate() == 0


def test_device_sigkilled_mid_upload_and_restarted_sends_every_result_exactly_once(
        camera_ward, engine, server_process, edge_processes, tmp_path) -> None:
    ward, sources = camera_ward
    server = server_process()
    state_dir = tmp_path / "edge"
    _pair(state_dir, server.url, engine, ward)
    env = edge_env(state_dir, bed_sources=sources, **FAST_RETRY)
    edge = edge_processes(env, tmp_path / "edge-1.log")

    # Kill the moment an upload is in flight (its row is `uploading`), after a couple have gone through.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = outbox_states(state_dir)
        if states.get(ResultState.UPLOADING) and states.get(ResultState.SENT, 0) >= 2:
            edge.kill()
            break
        assert states.get(ResultState.SENT, 0) < BEDS, "every upload finished before one could be interrupted"
        time.sleep(0.001)
    else:
        raise AssertionError("no upload was ever seen in flight")
    left = outbox_states(state_dir)
    assert left.get(ResultState.UPLOADING) == 1 and left.get(ResultState.SENT, 0) < BEDS

    edge_processes(env, tmp_path / "edge-2.log")
    wait_for(lambda: _all_answered_once(engine, ward), 180, "every result on the server")
    wait_for(lambda: outbox_states(state_dir) == {ResultState.SENT: BEDS}, 60, "every result acknowledged")
    assert "interrupted upload(s) back to pending" in (tmp_path / "edge-2.log").read_text()


def test_lost_ack_is_resent_with_its_key_and_counted_once(camera_ward, engine, server_process, tmp_path) -> None:
    ward, sources = camera_ward
    server = server_process()
    settings = EdgeSettings(state_dir=tmp_path / "edge", screen_enabled=False)
    _pair(settings.state_dir, server.url, engine, ward)
    device = Device(settings)
    device.poll_tasks(0)
    bed = next(iter(sources))
    device.check_bed(bed, sources[bed])
    claimed = device.outbox.next_pending()
    assert claimed is not None
    device.api.upload(claimed.upload())  # the server stores it ... and the device dies before recording the ack
    device.close()

    restarted = Device(settings)
    assert restarted.outbox.repair() == 1
    report = restarted.sync()
    assert (report.sent, report.duplicates) == (1, 1)
    assert sum(results_per_task(engine).values()) == 1
    stored = restarted.outbox.results()[0]
    assert stored.state == ResultState.SENT and stored.duplicate and stored.payload is None
    restarted.close()
