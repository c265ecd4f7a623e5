"""Place (实地) through a real server: scene frames at upload, references from a device, the evidence check.

A face capture without its scene is refused like a missing crop; a device captures references of its own
ward's beds only, and a blank wall is refused; a capture whose scene is the bed's room passes and its scene
is dropped with the crop, one made where the tablet was carried is flagged `place_mismatch` with its score,
threshold and the Wi-Fi / location cues. Scenes are the synthetic rooms of server/simulation/scenes.py.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlmodel import Session, select

from models.faces import crop_to_jpeg
from models.verdicts import CaptureOutcome, FlagKind
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, SceneSource, TaskBatch, TaskRead
from server.campaigns.service import create_campaign
from server.checks.tables import CheckResult
from server.flags.tables import Flag
from server.places.service import beds_without_reference, set_geofence
from server.places.tables import BedReference, SceneEvidence, WardFingerprint
from server.simulation.embeddings import photo_of
from server.simulation.scenes import render_room
from tests import factories
from tests.factories import synthetic_evidence

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)
WARD_WIFI = ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:03"]
HOSPITAL = (36.0671, 120.3826)  # a hospital in Qingdao


@pytest.fixture
def ward(engine, live_server, tmp_path: Path):
    """Two hospitals, two patients each, references for every bed, a running spot check, paired devices."""
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b"], seed=20)
        codes = [factories.pairing_code(db, w) for w in world.ward_ids]
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
        set_geofence(db, hospital_id=world.hospital_ids[0], lat=HOSPITAL[0], lon=HOSPITAL[1], radius_m=300,
                     actor="test")
    server = live_server(run_scheduler=True, evidence_interval_s=0.2, sweep_interval_s=0.5, roll_call_times="",
                         data_dir=tmp_path)
    devices = []
    for code in codes:
        client = httpx.Client(base_url=server.url, timeout=30)
        paired = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code, "place": {"wifi_bssids": WARD_WIFI}})
        client.headers["authorization"] = f"Bearer {paired.json()['token']}"
        devices.append(client)
    yield world, devices
    for client in devices:
        client.close()


def _tasks(device: httpx.Client) -> dict[int, TaskRead]:
    return {t.admission_id: t for t in TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks").json()).tasks}


def _face_upload(task: TaskRead, face: np.ndarray, scene_b64: str | None, place: dict | None = None) -> ResultUpload:
    embedding = photo_of(face, np.random.default_rng(task.task_id))
    return ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
                        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC),
                        embedding=[float(x) for x in embedding], liveness=LIVE,
                        scene_jpeg_b64=scene_b64, place=place, **synthetic_evidence(embedding))


def _post(device: httpx.Client, upload: ResultUpload) -> httpx.Response:
    return device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _checked(engine, expected: int, timeout_s: float = 60.0) -> list[Flag]:
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as db:
            results = db.exec(select(CheckResult)).all()
            if len(results) >= expected and all(r.evidence_checked_at for r in results):
                return list(db.exec(select(Flag).order_by(Flag.id)))
        assert time.monotonic() < deadline, "the evidence check did not run"
        time.sleep(0.2)


def test_a_face_capture_without_its_scene_frame_is_refused_and_an_empty_bed_needs_none(ward) -> None:
    world, (device, _) = ward
    tasks = _tasks(device)
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    refused = _post(device, _face_upload(tasks[a.admission_id], a.face, None))
    assert refused.status_code == 422 and refused.json()["code"] == "scene_frame_missing"
    broken = _post(device, _face_upload(tasks[a.admission_id], a.face, base64.b64encode(b"\xff\xd8 not").decode()))
    assert broken.status_code == 422
    assert _post(device, _face_upload(tasks[a.admission_id], a.face, factories.scene_b64(a.bed_id))).status_code == 200
    empty = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=tasks[b.admission_id].task_id,
                         nonce=tasks[b.admission_id].nonce, outcome=CaptureOutcome.BED_EMPTY,
                         captured_at=datetime.now(UTC))
    assert _post(device, empty).status_code == 200


def test_a_batch_refuses_only_the_capture_without_a_scene(ward) -> None:
    world, (device, _) = ward
    tasks = _tasks(device)
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    body = {"results": [_face_upload(tasks[a.admission_id], a.face, None).model_dump(mode="json"),
                        _face_upload(tasks[b.admission_id], b.face, factories.scene_b64(b.bed_id))
                        .model_dump(mode="json")]}
    items = device.post(f"{DEVICE_PREFIX}/results/batch", json=body).json()["items"]
    assert items[0]["error"]["code"] == "scene_frame_missing" and items[1]["ack"]["verdict"] == "verified"


def test_a_device_adds_references_for_its_own_ward_only_and_a_blank_wall_is_refused(ward, engine) -> None:
    world, (device, _) = ward
    own, other = world.patients["h1:a"], world.patients["h2:a"]
    room = base64.b64encode(crop_to_jpeg(render_room(777))).decode()
    added = device.post(f"{DEVICE_PREFIX}/beds/{own.bed_id}/references", json={"scene_jpeg_b64": room})
    assert added.status_code == 200 and added.json()["feature_count"] >= 300
    blank = base64.b64encode(crop_to_jpeg(np.full((360, 480, 3), 210, np.uint8))).decode()
    plain = device.post(f"{DEVICE_PREFIX}/beds/{own.bed_id}/references", json={"scene_jpeg_b64": blank})
    assert plain.status_code == 422 and plain.json()["code"] == "reference_too_plain"
    assert device.post(f"{DEVICE_PREFIX}/beds/{other.bed_id}/references",
                       json={"scene_jpeg_b64": room}).status_code == 404
    assert added.json()["status"] == "pending"  # waits for the bureau (tests/server/test_evidence_once.py)
    with Session(engine) as db:
        references = db.exec(select(BedReference).where(BedReference.bed_id == own.bed_id)
                             .order_by(BedReference.id)).all()
        assert [(r.status, r.is_active) for r in references] == [("approved", True), ("pending", False)]
        assert db.get(WardFingerprint, own.ward_id).wifi_bssids == WARD_WIFI  # enrolled at pairing


def test_a_capture_at_home_is_flagged_with_its_score_and_cues_and_one_at_the_bed_drops_its_scene(ward, engine) -> None:
    world, (device, _) = ward
    tasks = _tasks(device)
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    at_bed = _face_upload(tasks[a.admission_id], a.face, factories.scene_b64(a.bed_id, seed=1),
                          {"wifi_bssids": WARD_WIFI[:2], "location": {"lat": HOSPITAL[0], "lon": HOSPITAL[1]}})
    home = _face_upload(tasks[b.admission_id], b.face, factories.scene_b64(b.bed_id, at_home=True, seed=2),
                        {"wifi_bssids": ["12:34:56:78:9a:bc"],
                         "location": {"lat": HOSPITAL[0] + 0.05, "lon": HOSPITAL[1], "accuracy_m": 30}})
    assert _post(device, at_bed).json()["verdict"] == "verified"
    assert _post(device, home).json()["verdict"] == "verified"  # a live, matching face: only the place is wrong
    flags = _checked(engine, 2)
    assert [(f.kind, f.admission_id) for f in flags] == [(FlagKind.PLACE_MISMATCH, b.admission_id)]
    details = flags[0].details
    assert details["place_score"] < details["place_threshold"] and details["reason"] == "no_match"
    assert details["wifi"] == {"seen": 1, "known": 0, "enrolled": 3, "overlap": 0.0}
    assert details["location"]["outside"] is True and details["location"]["distance_m"] > 5000
    with Session(engine) as db:
        scenes = {s.result_id: s for s in db.exec(select(SceneEvidence))}
        by_task = {r.task_id: r.id for r in db.exec(select(CheckResult))}
        kept, dropped = scenes[by_task[tasks[b.admission_id].task_id]], scenes[by_task[tasks[a.admission_id].task_id]]
        assert kept.scene_jpeg is not None and kept.place_score == details["place_score"]
        assert dropped.scene_jpeg is None and dropped.place_score >= dropped.place_threshold
        assert dropped.matched_bed_id == a.bed_id
        assert dropped.place_details["wifi"]["known"] == 2 and dropped.place_details["location"]["outside"] is False


def test_a_bed_without_an_approved_reference_is_recorded_unchecked_not_flagged(ward, engine) -> None:
    """A bed not set up yet is one setup task (server/places/service.py beds_without_reference), not a
    place_mismatch on every capture; the capture records why it was not place-checked."""
    world, (_, device) = ward
    patient = world.patients["h2:a"]
    with Session(engine) as db:
        for reference in db.exec(select(BedReference).where(BedReference.ward_id == patient.ward_id)):
            db.delete(reference)
        db.commit()
    task = _tasks(device)[patient.admission_id]
    assert _post(device, _face_upload(task, patient.face, factories.scene_b64(patient.bed_id))).status_code == 200
    assert _checked(engine, 1) == []
    with Session(engine) as db:
        (scene,) = db.exec(select(SceneEvidence)).all()
        assert scene.place_details["reason"] == "no_approved_reference" and scene.reference_id is None
        assert patient.bed_id in {bed.id for bed, _, _ in beds_without_reference(db)}


def test_a_fixed_camera_moved_to_the_next_bed_is_seen(ward, engine) -> None:
    """A bed camera must show its own bed: the neighbour's view is a mismatch, though it is the same ward."""
    world, (device, _) = ward
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    with Session(engine) as db:
        for reference in db.exec(select(BedReference).where(BedReference.ward_id == a.ward_id)):
            reference.source = SceneSource.BED_CAMERA
            db.add(reference)
        db.commit()
    upload = _face_upload(_tasks(device)[a.admission_id], a.face, factories.scene_b64(b.bed_id))
    upload = upload.model_copy(update={"scene_source": SceneSource.BED_CAMERA})
    assert _post(device, upload).status_code == 200
    (flag,) = _checked(engine, 1)
    assert flag.kind == FlagKind.PLACE_MISMATCH and flag.admission_id == a.admission_id


def _png(array: np.ndarray, mode: str | None = None) -> str:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_odd_reference_and_scene_images_are_refused_with_a_reason_never_a_server_error(ward) -> None:
    world, (device, _) = ward
    patient = world.patients["h1:a"]
    odd = {"one pixel": _png(np.zeros((1, 1, 3), np.uint8)), "rgba": _png(np.zeros((40, 40, 4), np.uint8)),
           "grey 16 bit": _png(np.zeros((40, 40), np.uint16)), "huge": _png(np.zeros((1400, 1400), np.uint8)),
           "text": base64.b64encode(b"not an image at all").decode(), "not base64": "@@@@"}
    for name, data in odd.items():
        added = device.post(f"{DEVICE_PREFIX}/beds/{patient.bed_id}/references", json={"scene_jpeg_b64": data})
        assert 400 <= added.status_code < 500 and added.json()["code"], (name, added.status_code)
    task = _tasks(device)[patient.admission_id]
    for name, data in odd.items():
        sent = _post(device, _face_upload(task, patient.face, data))
        assert sent.status_code < 500, (name, sent.status_code)
