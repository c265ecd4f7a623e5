"""Numbers and clocks a device could send that no measurement gives: NaN and ±Infinity anywhere in a wire
schema, and a device clock out of range, are refused with their reason code and nothing is stored, through a
real server on SQLite and PostgreSQL (models/wire/base.py)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from sqlmodel import Session, func, select

from models.faces.engines import SYNTHETIC
from models.faces.liveness.report import liveness_report
from models.verdicts import CaptureOutcome
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, TaskBatch
from server.campaigns.service import create_campaign
from server.checks.tables import CheckResult
from server.devices.tables import Device
from server.simulation.embeddings import photo_of
from tests import factories
from tests.factories import synthetic_evidence


@pytest.fixture
def device(engine, live_server):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a"])
        code = factories.pairing_code(db, world.ward_ids[0])
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server()
    client = httpx.Client(base_url=server.url, timeout=30)
    paired = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code, "engine_version": SYNTHETIC.tag}).json()
    client.headers["authorization"] = f"Bearer {paired['token']}"
    yield world, client, paired["device_id"]
    client.close()


def _upload_json(world, client) -> dict:
    [task] = TaskBatch.model_validate(client.get(f"{DEVICE_PREFIX}/tasks").json()).tasks
    embedding = photo_of(world.patients["h1:a"].face, np.random.default_rng(0))
    live = LivenessReport(is_live=True, score=0.9, passive_score=0.9, depth=0.4, motion=0.2,
                          actions=[{"action": "turn_left", "passed": True, "time_s": 1.0, "value": 20.0}])
    upload = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
                          outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC), distance=0.3,
                          embedding=list(embedding), liveness=live, place={"location": {"lat": 30.0, "lon": 120.0}},
                          **synthetic_evidence(embedding, task.bed_id))
    return upload.model_dump(mode="json")


def _post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    # Python's json writes NaN and Infinity as the bare words a careless device's encoder would.
    return client.post(path, content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"})


POISON = {
    "liveness depth": lambda b: b["liveness"].__setitem__("depth", float("nan")),
    "liveness motion": lambda b: b["liveness"].__setitem__("motion", float("inf")),
    "action value": lambda b: b["liveness"]["actions"][0].__setitem__("value", float("-inf")),
    "embedding": lambda b: b["embedding"].__setitem__(5, float("nan")),
    "distance": lambda b: b.__setitem__("distance", float("inf")),
    "place cue": lambda b: b["place"]["location"].__setitem__("lat", float("nan")),
    "liveness score": lambda b: b["liveness"].__setitem__("score", float("nan")),
}


@pytest.mark.parametrize("where", list(POISON))
def test_a_non_finite_number_anywhere_in_a_result_is_refused_and_nothing_stored(where, device, engine) -> None:
    world, client, _ = device
    body = _upload_json(world, client)
    POISON[where](body)
    for path, payload in ((f"{DEVICE_PREFIX}/results", body), (f"{DEVICE_PREFIX}/results/batch", {"results": [body]})):
        refused = _post(client, path, payload)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "non_finite_number"
        assert any(e["type"] == "finite_number" for e in refused.json()["details"]["errors"])
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(CheckResult)).one() == 0
    body = _upload_json(world, client)  # the same result with finite numbers is taken
    assert _post(client, f"{DEVICE_PREFIX}/results", body).status_code == 200


def test_non_finite_numbers_are_refused_at_pairing_and_in_bed_references_too(device, engine) -> None:
    world, client, _ = device
    with Session(engine) as db:
        code = factories.pairing_code(db, world.ward_ids[0])
    pair = _post(client, f"{DEVICE_PREFIX}/pair", {"code": code, "place": {"location": {"lat": 30.0,
                                                                                         "lon": float("inf")}}})
    assert pair.status_code == 422 and pair.json()["code"] == "non_finite_number"
    bed = world.patients["h1:a"].bed_id
    reference = _post(client, f"{DEVICE_PREFIX}/beds/{bed}/references",
                      {"scene_jpeg_b64": factories.scene_b64(bed), "cues": {"location": {
                          "lat": float("nan"), "lon": 120.0, "accuracy_m": 5.0}}})
    assert reference.status_code == 422 and reference.json()["code"] == "non_finite_number"


@pytest.mark.parametrize("clock", ["9999-12-31T23:59:59+00:00", "1970-01-01T00:00:00+00:00",
                                   "0001-01-01T00:00:00+00:00", "far_future", "far_past"])
def test_a_heartbeat_with_an_impossible_clock_is_refused_and_the_offset_left_alone(clock, device, engine) -> None:
    _, client, device_id = device
    now = datetime.now(UTC)
    shown = {"far_future": (now + timedelta(days=30)).isoformat(),  # inside the years, beyond the offset column
             "far_past": (now - timedelta(days=30)).isoformat()}.get(clock, clock)
    assert client.post(f"{DEVICE_PREFIX}/heartbeat", json={"device_time": now.isoformat()}).status_code == 200
    refused = client.post(f"{DEVICE_PREFIX}/heartbeat", json={"device_time": shown})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "clock_implausible"
    with Session(engine) as db:
        assert abs(db.get(Device, device_id).clock_offset_ms) < 60_000
    # A clock a few days off is a wrong clock the server measures, not a refusal.
    later = client.post(f"{DEVICE_PREFIX}/heartbeat", json={"device_time": (now + timedelta(days=3)).isoformat()})
    assert later.status_code == 200


def test_the_device_sends_a_cue_that_came_out_nan_as_not_measured() -> None:
    from models.faces.liveness.passive import LivenessResult

    result = LivenessResult(is_live=False, score=float("nan"), blink_detected=False, passive_score=0.5,
                            motion=float("nan"))
    report = liveness_report(result)
    assert report.motion is None and report.score == 0.0


def test_a_tablet_whose_clock_reset_to_1970_hears_clock_implausible_instead_of_failing(device, monkeypatch) -> None:
    import edge_client.api as edge_api

    class Reset(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return datetime(1970, 1, 1, tzinfo=tz)

    _, client, _ = device
    api = edge_api.DeviceApi(str(client.base_url), client.headers["authorization"].removeprefix("Bearer "))
    try:
        monkeypatch.setattr(edge_api, "datetime", Reset)
        with pytest.raises(edge_api.ApiError) as refused:
            api.heartbeat(0)
        assert refused.value.code == "clock_implausible" and refused.value.retryable is False
    finally:
        api.close()


def test_a_hospital_geofence_of_nan_is_refused(device, engine) -> None:
    from server.accounts.tables import Role

    world, client, _ = device
    with Session(engine) as db:
        factories.user(db, "sup", Role.SUPERVISOR)
    with httpx.Client(base_url=str(client.base_url), timeout=30) as sup:
        token = sup.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        sup.headers["authorization"] = f"Bearer {token['access_token']}"
        path = f"/api/v1/places/hospitals/{world.hospital_ids[0]}/geofence"
        refused = _post_put(sup, path, {"lat": float("nan"), "lon": 120.0, "radius_m": 300.0})
        assert refused.status_code == 422 and refused.json()["code"] == "non_finite_number"
        assert _post_put(sup, path, {"lat": 30.0, "lon": 120.0, "radius_m": 300.0}).status_code == 200


def _post_put(client: httpx.Client, path: str, body: object) -> httpx.Response:
    return client.put(path, content=json.dumps(body, allow_nan=True), headers={"content-type": "application/json"})
