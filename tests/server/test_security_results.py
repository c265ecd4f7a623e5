"""A rooted tablet's results against a real server: no verdict without the crop, the server's own encoding of the
crop decides, crops sized like crops, capture times that make sense, bad items refused alone."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlmodel import Session, select

from models.faces.engines import SFACE, SYNTHETIC
from models.verdicts import CaptureOutcome
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, TaskBatch
from server.campaigns.service import create_campaign
from server.checks.tables import CheckResult
from server.simulation.embeddings import identity, photo_of
from tests import factories
from tests.factories import synthetic_evidence

LIVE = LivenessReport(is_live=True, score=0.9, passive_score=0.9)


def _ward(engine, live_server, **overrides):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a", "b", "c"])
        code = factories.pairing_code(db, world.ward_ids[0])
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server(**overrides)
    device = httpx.Client(base_url=server.url, timeout=30)
    token = device.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()["token"]
    device.headers["authorization"] = f"Bearer {token}"
    tasks = {t.admission_id: t for t in TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks").json()).tasks}
    return world, device, tasks


@pytest.fixture
def ward(engine, live_server):
    world, device, tasks = _ward(engine, live_server)
    yield world, device, tasks
    device.close()


def _face_result(task, embedding, **fields) -> dict:
    if "face_crop_jpeg_b64" in fields:  # a face with its crop is captured somewhere: at this bed
        fields.setdefault("scene_jpeg_b64", factories.scene_b64(task.bed_id))
    fields.setdefault("engine_version", SYNTHETIC.tag)
    upload = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
                          outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC),
                          embedding=[float(x) for x in embedding], liveness=LIVE, **fields)
    return upload.model_dump(mode="json")


def _post(device: httpx.Client, body: dict) -> httpx.Response:
    return device.post(f"{DEVICE_PREFIX}/results", json=body)


def test_a_face_result_without_its_crop_is_refused_and_nothing_stored(ward, engine) -> None:
    """The billed person's enrolled embedding plus noise, no crop: what a rooted tablet sends for an empty bed."""
    world, device, tasks = ward
    a = world.patients["h1:a"]
    response = _post(device, _face_result(tasks[a.admission_id], photo_of(a.face, np.random.default_rng(1), 0.05)))
    assert response.status_code == 422 and response.json()["code"] == "evidence_missing"
    with Session(engine) as db:
        assert db.exec(select(CheckResult)).all() == []


def test_the_crop_decides_not_the_reported_embedding(ward, engine) -> None:
    """The device reports the patient's embedding, but its crop shows someone else: impersonated."""
    world, device, tasks = ward
    a = world.patients["h1:a"]
    stranger = identity(np.random.default_rng(3))
    body = _face_result(tasks[a.admission_id], photo_of(a.face, np.random.default_rng(2), 0.05),
                        **synthetic_evidence(stranger))
    response = _post(device, body)
    assert response.status_code == 200 and response.json()["verdict"] == "impersonated"
    with Session(engine) as db:
        (result,) = db.exec(select(CheckResult)).all()
    assert result.server_embedding is not None and result.server_distance and result.server_distance > 1.0


def test_outside_demo_and_tests_a_synthetic_crop_is_no_face(engine, live_server, tmp_path) -> None:
    """Synthetic evidence is for the demo and the test suite: a production server judges it as an image."""
    world, device, tasks = _ward(engine, live_server, environment="production", data_dir=tmp_path)
    a = world.patients["h1:a"]
    embedding = photo_of(a.face, np.random.default_rng(4))
    # A forging device tags its embedding as a real engine's (a synthetic tag is refused there outright).
    forged = {**synthetic_evidence(embedding), "engine_version": SFACE.tag}
    response = _post(device, _face_result(tasks[a.admission_id], embedding, **forged))
    assert response.status_code == 200 and response.json()["verdict"] == "unrecognised"
    synthetic_tag = _post(device, _face_result(tasks[world.patients["h1:b"].admission_id], embedding,
                                               **synthetic_evidence(embedding)))
    assert synthetic_tag.status_code == 422 and synthetic_tag.json()["code"] == "unknown_engine"
    device.close()


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 90).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_photo_sized_crop_is_refused_before_decoding(ward) -> None:
    """6000x6000 is under the 40 MP image cap but no device makes such a crop (it cost 500 MB to decode)."""
    world, device, tasks = ward
    a = world.patients["h1:a"]
    photo = _png(6000, 6000)
    body = _face_result(tasks[a.admission_id], a.face, face_crop_jpeg_b64=base64.b64encode(photo).decode(),
                        evidence_sha256=hashlib.sha256(photo).hexdigest())
    response = _post(device, body)
    assert response.status_code == 413 and response.json()["code"] == "image_too_large"
    assert response.json()["details"]["max_side_px"] == 512


def test_a_naive_capture_time_refuses_that_result_alone(ward, engine) -> None:
    world, device, tasks = ward
    a, b, c = world.patients["h1:a"], world.patients["h1:b"], world.patients["h1:c"]
    rng = np.random.default_rng(5)
    good = _face_result(tasks[a.admission_id], a.face, **synthetic_evidence(photo_of(a.face, rng)))
    naive = _face_result(tasks[b.admission_id], b.face, **synthetic_evidence(photo_of(b.face, rng)))
    naive["captured_at"] = datetime.now(UTC).replace(tzinfo=None).isoformat()
    # An offset no column holds (2**40 ms), with a capture time that it would "correct" into the window.
    absurd = _face_result(tasks[c.admission_id], c.face, **synthetic_evidence(photo_of(c.face, rng)))
    absurd["clock_offset_ms"] = 2**40
    absurd["captured_at"] = (datetime.now(UTC) - timedelta(milliseconds=2**40)).isoformat()
    response = device.post(f"{DEVICE_PREFIX}/results/batch", json={"results": [good, naive, absurd]})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert items[0]["ack"]["verdict"] == "verified"
    assert items[1]["error"]["code"] == "invalid_input" and items[1]["error"]["http_status"] == 422
    assert items[2]["error"]["code"] == "clock_implausible" and items[2]["error"]["http_status"] == 422
    single = _post(device, naive)
    assert single.status_code == 422
    heartbeat = device.post(f"{DEVICE_PREFIX}/heartbeat", json={"device_time": "2026-12-01T08:00:00",
                                                                "outbox_pending": 0})
    assert heartbeat.status_code == 422
    with Session(engine) as db:
        assert len(db.exec(select(CheckResult)).all()) == 1


@pytest.mark.parametrize("captured_at", [datetime(2099, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
                                         "before_issue"])
def test_capture_times_outside_the_task_or_in_the_future_are_refused(ward, captured_at) -> None:
    world, device, tasks = ward
    a = world.patients["h1:a"]
    task = tasks[a.admission_id]
    when = task.issued_at - timedelta(hours=1) if captured_at == "before_issue" else captured_at
    body = _face_result(task, a.face, **synthetic_evidence(photo_of(a.face, np.random.default_rng(7))))
    body["captured_at"] = when.isoformat()
    response = _post(device, body)
    assert response.status_code == 422 and response.json()["code"] == "clock_implausible", response.text
    # A device whose clock runs an hour slow, and says so, is believed.
    body = json.loads(json.dumps(body))
    body["idempotency_key"] = uuid.uuid4().hex
    body["captured_at"] = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    body["clock_offset_ms"] = 3600 * 1000
    assert _post(device, body).json()["verdict"] == "verified"
