"""The must-show: a spot check over three hospitals, devices talking HTTP to a real server on loopback,
ends with exactly the expected verdicts and flags - on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from sqlmodel import Session, select

from models.verdicts import CaptureOutcome, FlagKind
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, TaskBatch
from server.accounts.tables import Role
from server.audit.service import verify
from server.campaigns.tables import CheckTask
from server.flags.tables import Flag
from server.simulation.embeddings import identity, photo_of
from tests import factories
from tests.factories import synthetic_evidence

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)
FAKE = LivenessReport(is_live=False, score=0.1, passive_score=0.1, reasons=["passive_check_failed"])


def _device(base_url: str, code: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code, "name": "tablet"}).raise_for_status().json()
    client.headers["authorization"] = f"Bearer {token['token']}"
    return client


def _upload(client: httpx.Client, task, outcome: CaptureOutcome, embedding=None, liveness=None) -> httpx.Response:
    body = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce, outcome=outcome,
                        captured_at=datetime.now(UTC), embedding=None if embedding is None else list(embedding),
                        liveness=liveness,
                        **({} if embedding is None else synthetic_evidence(embedding, task.bed_id)))
    return client.post(f"{DEVICE_PREFIX}/results", content=body.model_dump_json(),
                       headers={"content-type": "application/json"})


def test_spot_check_over_three_hospitals_ends_with_the_expected_verdicts_and_flags(engine, live_server) -> None:
    rng = np.random.default_rng(5)
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=3, patients_per_ward=["ok", "away", "silent", "other", "fake",
                                                                             "icu"])
        for h in (1, 2, 3):
            factories.exempt(db, world.patients[f"h{h}:icu"])
        factories.user(db, "sup", Role.SUPERVISOR)
        codes = [factories.pairing_code(db, ward) for ward in world.ward_ids]
    server = live_server(run_scheduler=True, sweep_interval_s=0.3)
    devices = [_device(server.url, code) for code in codes]

    with httpx.Client(base_url=server.url) as api:
        token = api.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        api.headers["authorization"] = f"Bearer {token['access_token']}"
        created = api.post("/api/v1/campaigns", json={"county": world.county, "deadline_s": 4})
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        assert created.json()["task_count"] == 18

        by_admission = {p.admission_id: (key.split(":")[1], p) for key, p in world.patients.items()}
        for device in devices:
            started = time.monotonic()
            batch = TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": 5}).json())
            assert time.monotonic() - started < 3, "tasks of a running spot check reach the device at once"
            assert len(batch.tasks) == 5  # the exempt patient is not asked for
            for task in batch.tasks:
                role, patient = by_admission[task.admission_id]
                if role == "ok":
                    response = _upload(device, task, CaptureOutcome.FACE_CAPTURED, photo_of(patient.face, rng), LIVE)
                elif role == "away":
                    response = _upload(device, task, CaptureOutcome.BED_EMPTY)
                elif role == "other":
                    response = _upload(device, task, CaptureOutcome.FACE_CAPTURED, identity(rng), LIVE)
                elif role == "fake":
                    response = _upload(device, task, CaptureOutcome.SPOOF, photo_of(patient.face, rng), FAKE)
                else:
                    continue  # "silent": nobody answers for this bed before the deadline
                assert response.status_code == 200, response.text

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            progress = api.get(f"/api/v1/campaigns/{campaign_id}/progress").json()
            if progress["status"] == "completed":
                break
            time.sleep(0.3)
        assert progress["status"] == "completed"
        assert {k: v for k, v in progress["counts"].items() if v} == {
            "verified": 3, "absent": 3, "overdue": 3, "impersonated": 3, "spoof": 3, "exempt": 3}
        assert progress["verification_rate"] == pytest.approx(3 / 15)

    for device in devices:
        device.close()
    with Session(engine) as db:
        verdicts = {t.admission_id: t.verdict.value for t in db.exec(select(CheckTask))}
        # A bed nobody answered is overdue, not absent: silence says nothing about the bed.
        expected = {"ok": "verified", "away": "absent", "silent": "overdue", "other": "impersonated",
                    "fake": "spoof", "icu": "exempt"}
        assert verdicts == {adm: expected[role] for adm, (role, _) in by_admission.items()}
        all_flags = list(db.exec(select(Flag)))
        flags = sorted((f.admission_id, f.kind.value) for f in all_flags if f.kind != FlagKind.DEVICE_OFFLINE)
        # Each ward's device answered its other beds: online, so a skipped bed is overdue, no device_offline flag.
        assert [f for f in all_flags if f.kind == FlagKind.DEVICE_OFFLINE] == []
        expected_flags = {"away": "absent", "silent": "overdue", "other": "impersonated", "fake": "spoof"}
        assert flags == sorted((adm, expected_flags[role]) for adm, (role, _) in by_admission.items()
                               if role in expected_flags)
        count, problems = verify(db)
        assert count > 18 and problems == []
