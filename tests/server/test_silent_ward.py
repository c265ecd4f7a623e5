"""A county run where one ward's device receives its tasks and then loses the network (a real server).

At the deadline its beds are overdue, not absent, and the ward has one device_offline flag. When the device
syncs late, each result is kept and marked late, the verdicts are updated, the overdue flags the results
contradict are superseded (audited, still visible), and one LATE flag counts the device's late results.
"""

from __future__ import annotations

import time
from contextlib import closing
from datetime import timedelta

import httpx
import numpy as np
from sqlmodel import Session, select

from models.verdicts import CaptureOutcome, FlagKind
from models.wire import DEVICE_PREFIX, ResultBatch, TaskBatch
from server.accounts.tables import Role
from server.audit.tables import AuditRecord
from server.flags.tables import Flag, FlagStatus
from server.simulation.embeddings import identity
from tests import factories
from tests.server.test_device_api import _result

BEDS = ["a", "b", "c", "d", "e"]


def _pair(base: str, code: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    paired = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()
    client.headers["authorization"] = f"Bearer {paired['token']}"
    return client


def _upload(device: httpx.Client, uploads: list) -> dict:
    response = device.post(f"{DEVICE_PREFIX}/results/batch", content=ResultBatch(results=uploads).model_dump_json(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def test_silent_ward_is_overdue_with_a_device_offline_flag_and_late_results_supersede_its_flags(
        engine, live_server) -> None:
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=3, patients_per_ward=BEDS)
        factories.user(db, "sup", Role.SUPERVISOR)
        codes = [factories.pairing_code(db, w) for w in world.ward_ids]
    faces = {p.admission_id: p.face for p in world.patients.values()}
    server = live_server(run_scheduler=True, sweep_interval_s=0.2)
    devices = [_pair(server.url, code) for code in codes]
    with closing(httpx.Client(base_url=server.url, timeout=30)) as api:
        token = api.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        api.headers["authorization"] = f"Bearer {token['access_token']}"
        campaign = api.post("/api/v1/campaigns", json={"county": world.county, "deadline_s": 4}).json()
        batches = [TaskBatch.model_validate(d.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": 5}).json()).tasks
                   for d in devices]
        assert [len(b) for b in batches] == [5, 5, 5]  # every ward's device received its tasks
        for device, tasks in zip(devices[1:], batches[1:], strict=True):  # wards 2 and 3 answer in time
            _upload(device, [_result(t, faces[t.admission_id]) for t in tasks])
        # ward 1's device has its tasks and goes silent
        deadline = time.monotonic() + 20
        while api.get(f"/api/v1/campaigns/{campaign['id']}").json()["status"] != "completed":
            assert time.monotonic() < deadline, "the sweep closes the campaign at its deadline"
            time.sleep(0.2)
        progress = api.get(f"/api/v1/campaigns/{campaign['id']}/progress").json()
        counts = {k: v for k, v in progress["counts"].items() if v}
        assert counts == {"verified": 10, "overdue": 5}
        flags = api.get("/api/v1/flags", params={"campaign_id": campaign["id"], "limit": 500}).json()["items"]
        assert sorted(f["kind"] for f in flags) == ["device_offline"] + ["overdue"] * 5
        offline = next(f for f in flags if f["kind"] == "device_offline")
        assert offline["details"]["ward_id"] == world.ward_ids[0] and offline["details"]["delivered"] == 5
        assert offline["details"]["reason"] == "silent"

        # The network comes back: the outbox syncs, late. Four patients are there, the fifth is someone else.
        silent = batches[0]
        uploads = [_result(t, faces[t.admission_id]) for t in silent[:4]]
        stranger = _result(silent[4], identity(np.random.default_rng(9)))
        stranger.outcome = CaptureOutcome.FACE_CAPTURED
        # Captured while the ward was cut off, inside each task's life; only the upload is late (a capture made
        # after the deadline decides nothing).
        for upload, task in zip([*uploads, stranger], silent, strict=True):
            upload.captured_at = task.issued_at + timedelta(seconds=1)
        acks = _upload(devices[0], [*uploads, stranger])["items"]
        assert [a["ack"]["late"] for a in acks] == [True] * 5
        assert [a["ack"]["verdict"] for a in acks] == ["verified"] * 4 + ["impersonated"]

        flags = api.get("/api/v1/flags", params={"campaign_id": campaign["id"], "limit": 500}).json()["items"]
        by_task = {}
        for flag in flags:
            by_task.setdefault(flag["task_id"], []).append(flag)
        for task in silent[:4]:  # verified late: nothing left open on the bed, the superseded flag still shown
            (only,) = by_task[task.task_id]
            assert only["kind"] == "overdue" and only["status"] == "superseded"
            assert only["details"]["late_verdict"] == "verified" and only["details"]["superseded_by_result_id"]
        kinds = sorted((f["kind"], f["status"]) for f in by_task[silent[4].task_id])
        assert kinds == [("impersonated", "open"), ("overdue", "superseded")]
        late = [f for f in flags if f["kind"] == "late"]
        assert len(late) == 1 and late[0]["details"]["late_results"] == 5 and late[0]["status"] == "open"
        assert next(f for f in flags if f["kind"] == "device_offline")["status"] == "open"
        assert not [f for f in flags if f["kind"] in ("absent", "overdue") and f["status"] == "open"]
    for device in devices:
        device.close()
    with Session(engine) as db:
        superseded = db.exec(select(Flag.id).where(Flag.status == FlagStatus.SUPERSEDED)).all()
        audited = {r.object_id for r in db.exec(select(AuditRecord).where(AuditRecord.action == "flag.transition",
                                                                           AuditRecord.actor == "system"))}
        assert {str(i) for i in superseded} == audited and len(superseded) == 5
        assert db.exec(select(Flag).where(Flag.kind == FlagKind.ABSENT)).first() is None
