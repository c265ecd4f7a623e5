"""A malicious ward device, scripted with its own HTTP client against a real server on loopback (issue 25).

It sends again, in a later check of the same or another bed, what an earlier check uploaded: its scene frame,
its liveness frames, its crop, as byte copies and as re-encoded, resized, trimmed copies; the earlier
images were deleted after verification, so only their kept fingerprints can catch it. And it plants a
reference frame of another room for a bed. None passes unflagged; each has a stable reason.
Scenes are the synthetic rooms of server/simulation/scenes.py; liveness frames other synthetic rooms (the
test server does not re-judge liveness, so any structured JPEG stands in for a face frame).
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlmodel import Session, select

from models.faces import crop_to_jpeg
from models.verdicts import CaptureOutcome, FlagKind
from models.wire import DEVICE_PREFIX, KeyFrame, LivenessReport, ResultUpload, TaskBatch, TaskRead
from server.accounts.tables import Role
from server.audit.tables import AuditRecord
from server.campaigns.service import create_campaign
from server.checks.tables import CheckResult
from server.checks.tables import KeyFrame as StoredKeyFrame
from server.evidence.tables import EvidenceFingerprint
from server.flags.tables import Flag
from server.places.tables import BedReference, SceneEvidence
from server.simulation.embeddings import photo_of
from server.simulation.scenes import render_room
from tests import factories
from tests.factories import synthetic_evidence

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)


@pytest.fixture
def ward(engine, live_server, tmp_path: Path):
    """One hospital, two patients in one ward, two spot checks running (two tasks per bed), a paired tablet,
    a supervisor and the hospital's insurance office."""
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b"], seed=25)
        code = factories.pairing_code(db, world.ward_ids[0])
        for _ in range(2):
            create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
        factories.user(db, "sup", Role.SUPERVISOR)
        factories.user(db, "office", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
    server = live_server(run_scheduler=True, evidence_interval_s=0.2, sweep_interval_s=0.5, roll_call_times="",
                         data_dir=tmp_path)
    device = httpx.Client(base_url=server.url, timeout=30)
    token = device.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()["token"]
    device.headers["authorization"] = f"Bearer {token}"
    yield world, device, server
    device.close()


def _tasks(device: httpx.Client) -> dict[int, list[TaskRead]]:
    """Open tasks by admission, oldest first (two checks are running)."""
    out: dict[int, list[TaskRead]] = {}
    for task in sorted(TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks").json()).tasks,
                       key=lambda t: t.task_id):
        out.setdefault(task.admission_id, []).append(task)
    return out


def _jpeg_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _frames(seeds: list[int]) -> list[bytes]:
    return [crop_to_jpeg(render_room(seed), quality=85) for seed in seeds]


def _key_frames(frames: list[bytes]) -> list[KeyFrame]:
    return [KeyFrame(role="neutral" if i == 0 else "turn_left", time_s=0.5 * i, jpeg_b64=_jpeg_b64(f),
                     sha256=hashlib.sha256(f).hexdigest()) for i, f in enumerate(frames)]


def _upload(device: httpx.Client, task: TaskRead, face: np.ndarray, *, scene: bytes, frames: list[bytes] = (),
            seed: int, crop: bytes | None = None, embedding: np.ndarray | None = None) -> httpx.Response:
    vector = embedding if embedding is not None else photo_of(face, np.random.default_rng(seed))
    evidence = synthetic_evidence(vector)
    if crop is not None:
        evidence = {**evidence, "face_crop_jpeg_b64": _jpeg_b64(crop),
                    "evidence_sha256": hashlib.sha256(crop).hexdigest()}
    upload = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
                          outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC),
                          embedding=[float(x) for x in vector], liveness=LIVE, key_frames=_key_frames(list(frames)),
                          scene_jpeg_b64=_jpeg_b64(scene), **evidence)
    return device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _checked(engine, expected: int, timeout_s: float = 90.0) -> list[Flag]:
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as db:
            results = db.exec(select(CheckResult)).all()
            if len(results) >= expected and all(r.evidence_checked_at for r in results):
                return list(db.exec(select(Flag).order_by(Flag.id)))
        assert time.monotonic() < deadline, "the evidence check did not run"
        time.sleep(0.2)


def _copy(jpeg: bytes, *, scale: float = 1.0, trim: float = 0.0, quality: int = 70) -> bytes:
    """What a device does to dodge a byte comparison: re-encode, resize, cut a little off the edges."""
    image = Image.open(io.BytesIO(jpeg)).convert("RGB")
    width, height = image.size
    dx, dy = int(width * trim), int(height * trim)
    image = image.crop((dx, dy, width - dx, height - dy))
    image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _scene(bed_id: int, seed: int) -> bytes:
    return base64.b64decode(factories.scene_b64(bed_id, seed=seed))


def _replays(flags: list[Flag]) -> list[Flag]:
    return [f for f in flags if f.kind == FlagKind.REPLAYED_EVIDENCE]


def test_an_honest_second_check_of_the_same_bed_raises_nothing(ward, engine) -> None:
    """Another capture of the same bed, patient and device (new light, tablet moved, patient moved) is no copy."""
    world, device, _ = ward
    a = world.patients["h1:a"]
    first, second = _tasks(device)[a.admission_id]
    sent = _upload(device, first, a.face, scene=_scene(a.bed_id, 1), frames=_frames([11, 12]), seed=1)
    assert sent.status_code == 200
    assert _checked(engine, 1) == []
    sent = _upload(device, second, a.face, scene=_scene(a.bed_id, 2), frames=_frames([13, 14]), seed=2)
    assert sent.status_code == 200
    assert _checked(engine, 2) == []
    with Session(engine) as db:
        kept = db.exec(select(EvidenceFingerprint)).all()
        # crop, scene and two frames of each check, the images themselves gone
        assert sorted(r.part for r in kept) == sorted(["crop", "scene", "key_frame", "key_frame"] * 2)
        assert all(s.scene_jpeg is None for s in db.exec(select(SceneEvidence)))
        assert all(k.jpeg is None for k in db.exec(select(StoredKeyFrame)))


def test_a_byte_copy_of_a_deleted_scene_frame_is_replayed_evidence(ward, engine) -> None:
    world, device, _ = ward
    a = world.patients["h1:a"]
    first, second = _tasks(device)[a.admission_id]
    scene = _scene(a.bed_id, 1)
    assert _upload(device, first, a.face, scene=scene, seed=1).json()["verdict"] == "verified"
    assert _checked(engine, 1) == []
    with Session(engine) as db:
        assert all(s.scene_jpeg is None for s in db.exec(select(SceneEvidence)))  # deleted after verification
    _upload(device, second, a.face, scene=scene, seed=2)
    (flag,) = _replays(_checked(engine, 2))
    assert flag.admission_id == a.admission_id and flag.details["reason"] == "repeated_scene"
    (reused,) = flag.details["reused"]
    assert reused["part"] == "scene" and reused["exact"] is True and reused["earlier_task_id"] == first.task_id


@pytest.mark.parametrize("copy", [dict(quality=60), dict(scale=0.8), dict(trim=0.03, scale=0.9, quality=75)],
                         ids=["re-encoded", "resized", "trimmed"])
def test_a_re_encoded_scene_and_frame_of_another_beds_check_are_replayed_evidence(ward, engine, copy) -> None:
    """The tablet's earlier scene and liveness frame of bed a, re-encoded, resized or trimmed, sent for bed b."""
    world, device, _ = ward
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    tasks = _tasks(device)
    scene, frames = _scene(a.bed_id, 1), _frames([21, 22])
    _upload(device, tasks[a.admission_id][0], a.face, scene=scene, frames=frames, seed=1)
    assert _checked(engine, 1) == []
    _upload(device, tasks[b.admission_id][0], b.face, scene=_copy(scene, **copy),
            frames=[_copy(frames[1], **copy), _frames([23])[0]], seed=2)
    (flag,) = _replays(_checked(engine, 2))
    assert flag.admission_id == b.admission_id and flag.details["reason"] == "repeated_scene"
    reused = {r["part"]: r for r in flag.details["reused"]}
    assert set(reused) == {"scene", "key_frame"} and reused["key_frame"]["position"] == 0
    assert all(r["exact"] is False and r["distance"] <= 8 for r in reused.values())


def test_an_unchanged_room_seen_again_is_not_a_replay_by_itself(ward, engine) -> None:
    """A re-encoded copy of bed a's earlier scene, with new face frames: as close as the same room seen again
    (nothing changed), so not flagged on the scene alone; a byte copy is (test above)."""
    world, device, _ = ward
    a = world.patients["h1:a"]
    first, second = _tasks(device)[a.admission_id]
    scene = _scene(a.bed_id, 1)
    _upload(device, first, a.face, scene=scene, frames=_frames([51]), seed=1)
    assert _checked(engine, 1) == []
    _upload(device, second, a.face, scene=_copy(scene, quality=60), frames=_frames([52]), seed=2)
    assert _checked(engine, 2) == []


def test_liveness_frames_of_an_earlier_check_sent_again_are_a_repeated_sequence(ward, engine) -> None:
    world, device, _ = ward
    a = world.patients["h1:a"]
    first, second = _tasks(device)[a.admission_id]
    frames = _frames([31, 32, 33])
    _upload(device, first, a.face, scene=_scene(a.bed_id, 1), frames=frames, seed=1)
    assert _checked(engine, 1) == []
    replayed = [frames[0], _copy(frames[1]), _copy(frames[2], scale=0.75)]  # one byte copy, two re-encoded
    _upload(device, second, a.face, scene=_scene(a.bed_id, 2), frames=replayed, seed=2)
    (flag,) = _replays(_checked(engine, 2))
    assert flag.details["reason"] == "repeated_sequence"
    assert sorted((r["position"], r["exact"]) for r in flag.details["reused"]) == [(0, True), (1, False), (2, False)]


def test_a_single_reused_frame_is_a_repeated_frame(ward, engine) -> None:
    world, device, _ = ward
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    tasks = _tasks(device)
    frames = _frames([41, 42])
    _upload(device, tasks[a.admission_id][0], a.face, scene=_scene(a.bed_id, 1), frames=frames, seed=1)
    assert _checked(engine, 1) == []
    _upload(device, tasks[b.admission_id][0], b.face, scene=_scene(b.bed_id, 2), frames=[_frames([43])[0],
            _copy(frames[1], quality=50)], seed=2)
    (flag,) = _replays(_checked(engine, 2))
    assert flag.details["reason"] == "repeated_frame" and flag.details["reused"][0]["part"] == "key_frame"


def test_the_same_crop_again_is_one_replay_flag_not_two(ward, engine) -> None:
    """A byte-identical crop is the existing `replayed_photo` (same_image): not flagged a second time."""
    world, device, _ = ward
    a = world.patients["h1:a"]
    first, second = _tasks(device)[a.admission_id]
    vector = photo_of(a.face, np.random.default_rng(1))
    _upload(device, first, a.face, scene=_scene(a.bed_id, 1), seed=1, embedding=vector)
    assert _checked(engine, 1) == []
    _upload(device, second, a.face, scene=_scene(a.bed_id, 2), seed=2, embedding=vector)
    flags = _checked(engine, 2)
    assert [(f.kind, f.details["reason"]) for f in flags] == [(FlagKind.REPLAYED_PHOTO, "same_image")]


# --- references the hospital cannot plant --------------------------------------------------------------
def _login(server, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    client.headers["authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def _home(bed_id: int, seed: int) -> bytes:
    return base64.b64decode(factories.scene_b64(bed_id, at_home=True, seed=seed))


def _home_reference(bed_id: int) -> str:
    return _jpeg_b64(_home(bed_id, 99))


def _without_references(engine, bed_id: int) -> None:
    with Session(engine) as db:
        for reference in db.exec(select(BedReference).where(BedReference.bed_id == bed_id)):
            db.delete(reference)
        db.commit()


def test_a_reference_of_another_room_from_the_device_waits_and_captures_there_are_place_mismatch(ward, engine
                                                                                                   ) -> None:
    """The hospital's tablet plants a room at home as bed a's reference (the bed has none approved yet) and
    checks the patient there: the reference waits for the bureau, the capture is `unapproved_reference`."""
    world, device, _ = ward
    a = world.patients["h1:a"]
    _without_references(engine, a.bed_id)
    planted = device.post(f"{DEVICE_PREFIX}/beds/{a.bed_id}/references",
                          json={"scene_jpeg_b64": _home_reference(a.bed_id)})
    assert planted.status_code == 200 and planted.json()["status"] == "pending"
    _upload(device, _tasks(device)[a.admission_id][0], a.face, scene=_home(a.bed_id, 1), seed=1)
    (flag,) = _checked(engine, 1)
    assert flag.kind == FlagKind.PLACE_MISMATCH and flag.details["reason"] == "unapproved_reference"
    assert flag.details["reference_id"] == planted.json()["reference_id"]
    assert flag.details["place_score"] >= flag.details["place_threshold"]  # it does match: the planted room


def test_a_planted_reference_does_not_cover_a_bed_that_has_an_approved_one(ward, engine) -> None:
    world, device, _ = ward
    b = world.patients["h1:b"]
    assert device.post(f"{DEVICE_PREFIX}/beds/{b.bed_id}/references",
                       json={"scene_jpeg_b64": _home_reference(b.bed_id)}).json()["status"] == "pending"
    _upload(device, _tasks(device)[b.admission_id][0], b.face, scene=_home(b.bed_id, 1), seed=1)
    (flag,) = _checked(engine, 1)
    assert flag.kind == FlagKind.PLACE_MISMATCH and flag.details["reason"] == "no_match"


def test_a_bed_without_an_approved_reference_is_a_setup_task_not_a_flag_until_the_bureau_approves(ward, engine
                                                                                                     ) -> None:
    world, device, server = ward
    a = world.patients["h1:a"]
    _without_references(engine, a.bed_id)
    first, second = _tasks(device)[a.admission_id]
    _upload(device, first, a.face, scene=_scene(a.bed_id, 1), seed=1)
    assert _checked(engine, 1) == []  # no flag on the capture: the bed is not set up yet
    with Session(engine) as db:
        (scene,) = db.exec(select(SceneEvidence)).all()
        assert scene.place_details["reason"] == "no_approved_reference"
    room = _jpeg_b64(crop_to_jpeg(render_room(20_000_000 + a.bed_id)))  # what the bed really looks like
    reference = device.post(f"{DEVICE_PREFIX}/beds/{a.bed_id}/references", json={"scene_jpeg_b64": room}).json()
    office, supervisor = _login(server, "office"), _login(server, "sup")
    decision = f"/api/v1/places/references/{reference['reference_id']}/decision"
    refused = office.post(decision, json={"approve": True})
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    approved = supervisor.post(decision, json={"approve": True, "note": "本床位"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = supervisor.post(decision, json={"approve": False})
    assert again.status_code == 409 and again.json()["code"] == "reference_already_decided"
    _upload(device, second, a.face, scene=_scene(a.bed_id, 2), seed=2)
    assert _checked(engine, 2) == []
    with Session(engine) as db:
        scene = db.exec(select(SceneEvidence).order_by(SceneEvidence.result_id.desc())).first()
        assert scene.place_details["reason"] == "match" and scene.reference_id == reference["reference_id"]
        audited = db.exec(select(AuditRecord).where(AuditRecord.action == "place.reference_approved")).all()
        assert [(r.object_id, r.actor.startswith("user:")) for r in audited] == [
            (str(reference["reference_id"]), True)]
    for client in (office, supervisor):
        client.close()
