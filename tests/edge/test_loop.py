"""The run loop as its own process: a spot check reaches the device within seconds through the long-poll,
heartbeats report the outbox, and SIGTERM stops it cleanly even in the middle of a long-poll."""

from __future__ import annotations

import sqlite3
import time

from sqlmodel import Session

from edge_client.config import EdgeSettings
from edge_client.device import pair_device
from server.campaigns.service import create_campaign
from server.devices.tables import Device
from tests.edge.conftest import build_ward, edge_env, pairing_code, wait_for


def _open_tasks(path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM task WHERE answered = 0").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_spot_check_reaches_the_device_within_seconds_and_sigterm_stops_it(engine, server_process,
                                                                           edge_processes, tmp_path) -> None:
    ward = build_ward(engine, {"a": None, "b": None}, spot_check=False)
    server = server_process()
    state_dir = tmp_path / "edge"
    credentials = pair_device(EdgeSettings(state_dir=state_dir), server.url, pairing_code(engine, ward.ward_id))
    edge = edge_processes(edge_env(state_dir, long_poll_s=20, heartbeat_interval_s=1, screen_enabled="false"),
                          tmp_path / "edge.log")
    wait_for(lambda: (state_dir / "outbox.sqlite3").exists(), 30, "the device to start")
    time.sleep(2)  # now sitting in a long-poll with nothing pending

    with Session(engine) as db:
        create_campaign(db, hospital_ids=ward.world.hospital_ids, deadline_s=600, actor="test")
    issued = time.monotonic()
    wait_for(lambda: _open_tasks(state_dir / "outbox.sqlite3") == 2, 15, "the spot check's tasks on the device",
             interval_s=0.05)
    assert time.monotonic() - issued < 5.0

    with Session(engine) as db:
        device = db.get(Device, credentials.device_id)
        assert device is not None and device.last_seen_at is not None

    stopping = time.monotonic()
    assert edge.terminate(timeout=15) == 0
    assert time.monotonic() - stopping < 10
