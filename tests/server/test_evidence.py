"""Attacks on the evidence, through a real server with its scheduler running the evidence check.

A tampered embedding, one photo used for two beds, an enrolled photo shown to the camera, the same face in
two hospitals, an impersonator named from the enrolled insured and the staff gallery, a decompression bomb
as the crop. Synthetic embeddings where the check is about vectors; real faces where it is about images.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlmodel import Session, select

from models.faces import crop_to_jpeg
from models.faces.decode import load_image_file
from models.faces.engine import FaceEngine
from models.faces.engines import SYNTHETIC
from models.faces.liveness.actions import Action, LivenessMethod, prompt_schedule
from models.faces.liveness.session import capture_session
from models.faces.liveness.track import FaceTrack, TrackedFrame
from models.settings import EngineSettings
from models.verdicts import CaptureOutcome, FlagKind, Verdict
from models.wire import DEVICE_PREFIX, CaptureSession, KeyFrame, LivenessReport, ResultUpload, TaskBatch, TaskRead
from server.campaigns.service import create_campaign
from server.campaigns.tables import CheckTask
from server.checks.synthetic import synthetic_crop
from server.checks.tables import CheckResult
from server.checks.tables import KeyFrame as StoredKeyFrame
from server.flags.tables import Flag
from server.persons.service import add_embedding, add_staff_embedding
from server.persons.tables import FaceEmbedding
from server.simulation.embeddings import identity, photo_of
from tests import factories

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)


@pytest.fixture
def ward(engine, live_server, tmp_path: Path):
    """Two hospitals with two patients each, a running spot check, one paired device per ward."""
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b"], seed=4)
        codes = [factories.pairing_code(db, w) for w in world.ward_ids]
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server(run_scheduler=True, evidence_interval_s=0.2, sweep_interval_s=0.5, roll_call_times="",
                         data_dir=tmp_path)
    devices = []
    for code in codes:
        client = httpx.Client(base_url=server.url, timeout=30)
        token = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()["token"]
        client.headers["authorization"] = f"Bearer {token}"
        devices.append(client)
    yield world, devices
    for client in devices:
        client.close()


def _tasks(device: httpx.Client) -> dict[int, TaskRead]:
    """This ward's open tasks by admission id."""
    return {t.admission_id: t for t in TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks").json()).tasks}


def _upload(device: httpx.Client, task: TaskRead, embedding: np.ndarray, crop: bytes | None = None,
            engine_version: str = SYNTHETIC.tag) -> httpx.Response:
    """A face result with its crop: a real one when given, else the labelled synthetic one tests may send."""
    crop = crop if crop is not None else synthetic_crop(embedding)
    upload = ResultUpload(
        idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC), embedding=[float(x) for x in embedding],
        liveness=LIVE, engine_version=engine_version,
        face_crop_jpeg_b64=base64.b64encode(crop).decode(), evidence_sha256=hashlib.sha256(crop).hexdigest(),
        scene_jpeg_b64=factories.scene_b64(task.bed_id))
    return device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _flags_when_checked(engine, expected_results: int, timeout_s: float = 60.0) -> list[Flag]:
    """Waits until the server's evidence check has looked at every result, then returns all flags."""
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as db:
            results = db.exec(select(CheckResult)).all()
            if len(results) >= expected_results and all(r.evidence_checked_at for r in results):
                return list(db.exec(select(Flag).order_by(Flag.id)))
        assert time.monotonic() < deadline, "the evidence check did not run"
        time.sleep(0.2)


def _kinds(flags: list[Flag]) -> list[str]:
    return sorted(str(f.kind) for f in flags)


def test_honest_checks_raise_nothing(ward, engine) -> None:
    world, devices = ward
    rng = np.random.default_rng(1)
    for h, device in enumerate(devices, start=1):
        tasks = _tasks(device)
        for name in ("a", "b"):
            patient = world.patients[f"h{h}:{name}"]
            assert _upload(device, tasks[patient.admission_id], photo_of(patient.face, rng)).status_code == 200
    assert _flags_when_checked(engine, 4) == []


def test_one_photo_for_two_beds_is_a_replay(ward, engine) -> None:
    """The second bed shows the very same picture (same bytes' hash, same embedding) as the first."""
    world, (device, _) = ward
    tasks = _tasks(device)
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    picture = photo_of(a.face, np.random.default_rng(2))
    assert _upload(device, tasks[a.admission_id], picture).json()["verdict"] == "verified"
    assert _upload(device, tasks[b.admission_id], picture).json()["verdict"] == "impersonated"
    flags = _flags_when_checked(engine, 2)
    replays = [f for f in flags if f.kind == FlagKind.REPLAYED_PHOTO]
    assert len(replays) == 1 and replays[0].admission_id == b.admission_id
    assert replays[0].details["reason"] == "same_image"


def test_near_identical_embedding_on_another_bed_is_a_replay(ward, engine) -> None:
    world, (device, _) = ward
    tasks = _tasks(device)
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    picture = photo_of(a.face, np.random.default_rng(3))
    _upload(device, tasks[a.admission_id], picture)
    _upload(device, tasks[b.admission_id], picture + 0.003)  # re-encoded copy: not bit-identical
    replays = [f for f in _flags_when_checked(engine, 2) if f.kind == FlagKind.REPLAYED_PHOTO]
    assert [f.admission_id for f in replays] == [b.admission_id]
    assert replays[0].details["reason"] == "near_identical_capture"


def test_enrolled_photo_shown_to_the_camera_is_a_replay(ward, engine) -> None:
    world, (device, _) = ward
    a = world.patients["h1:a"]
    response = _upload(device, _tasks(device)[a.admission_id], a.face)  # exactly the enrolled embedding
    assert response.json()["verdict"] == "verified"
    flags = _flags_when_checked(engine, 1)
    assert _kinds(flags) == ["replayed_photo"] and flags[0].details["reason"] == "enrolled_photo_shown"


def test_impersonator_is_named_from_insured_persons_and_staff(ward, engine) -> None:
    """Bed h1:a shows the patient admitted in hospital 2; bed h1:b shows a nurse of hospital 1."""
    world, (device, other_device) = ward
    rng = np.random.default_rng(5)
    nurse = identity(rng)
    with Session(engine) as db:
        add_staff_embedding(db, hospital_id=world.hospital_ids[0], staff_number="N-007", name="护士", vector=nurse,
                            source="test", engine_version=SYNTHETIC.tag)
        db.commit()
    a, b, elsewhere = world.patients["h1:a"], world.patients["h1:b"], world.patients["h2:a"]
    tasks = _tasks(device)
    assert _upload(device, tasks[a.admission_id], photo_of(elsewhere.face, rng)).json()["verdict"] == "impersonated"
    assert _upload(device, tasks[b.admission_id], photo_of(nurse, rng)).json()["verdict"] == "impersonated"
    flags = {f.admission_id: f for f in _flags_when_checked(engine, 2) if f.kind == FlagKind.IMPERSONATED}
    (named_patient,) = flags[a.admission_id].details["named"]
    assert named_patient["kind"] == "insured_person"
    assert named_patient["insured_person_id"] == elsewhere.person_id
    assert named_patient["admitted_at_hospital_id"] == world.hospital_ids[1]
    (named_staff,) = flags[b.admission_id].details["named"]
    assert named_staff["kind"] == "staff" and named_staff["staff_number"] == "N-007"


def test_a_never_enrolled_impostor_names_nobody(ward, engine) -> None:
    """Open-set: a stranger in the bed is "unknown person", never the nearest innocent insured person."""
    world, (device, _) = ward
    a = world.patients["h1:a"]
    stranger = identity(np.random.default_rng(55))
    assert _upload(device, _tasks(device)[a.admission_id], stranger).json()["verdict"] == "impersonated"
    (flag,) = [f for f in _flags_when_checked(engine, 1) if f.kind == FlagKind.IMPERSONATED]
    assert flag.details["named"] == []
    assert flag.details["naming"]["outcome"] in ("above_threshold", "no_candidate")
    assert flag.details["naming"]["gallery_size"] == len(world.patients)


def test_same_face_in_two_hospitals_is_flagged(ward, engine) -> None:
    """The patient of hospital 1 also lies, as an impostor, in a bed of hospital 2."""
    world, (device, other_device) = ward
    rng = np.random.default_rng(6)
    patient, bed_elsewhere = world.patients["h1:a"], world.patients["h2:b"]
    _upload(device, _tasks(device)[patient.admission_id], photo_of(patient.face, rng))
    _upload(other_device, _tasks(other_device)[bed_elsewhere.admission_id], photo_of(patient.face, rng))
    flags = _flags_when_checked(engine, 2)
    cross = [f for f in flags if f.kind == FlagKind.CROSS_HOSPITAL_FACE]
    assert len(cross) == 1 and cross[0].hospital_id == world.hospital_ids[1]
    assert cross[0].details["other_hospital_id"] == world.hospital_ids[0]


def test_a_crop_without_a_face_is_unrecognised_and_tampering(ward, engine) -> None:
    """The device's embedding is the patient's, but the server finds no face in the crop: it decides on that."""
    world, (device, _) = ward
    a = world.patients["h1:a"]
    blank = crop_to_jpeg(np.full((120, 100, 3), 128, dtype=np.uint8))
    assert _upload(device, _tasks(device)[a.admission_id], photo_of(a.face, np.random.default_rng(7)),
                   crop=blank).json()["verdict"] == "unrecognised"
    flags = _flags_when_checked(engine, 1)
    assert _kinds(flags) == ["tampered_evidence", "unrecognised"]
    assert [f.details["reason"] for f in flags if f.kind == FlagKind.TAMPERED_EVIDENCE] == ["no_face_in_crop"]


def test_decompression_bomb_as_crop_is_refused_and_nothing_stored(ward, engine) -> None:
    world, (device, _) = ward
    a = world.patients["h1:a"]
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # ~50 kB that would decode to 400 Mpx
    response = _upload(device, _tasks(device)[a.admission_id], photo_of(a.face, np.random.default_rng(8)),
                       crop=buffer.getvalue())
    assert response.status_code == 413 and response.json()["code"] == "image_too_many_pixels"
    with Session(engine) as db:
        assert db.exec(select(CheckResult)).all() == []


# --- with real faces ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def face_engine() -> FaceEngine:
    return FaceEngine(EngineSettings())


def _burst(engine: FaceEngine, path: Path) -> tuple[np.ndarray, bytes]:
    image = load_image_file(path, engine.settings)
    burst = engine.check_burst([image, image, image])
    assert burst.encoding is not None and burst.crop_rgb is not None
    return burst.encoding, crop_to_jpeg(burst.crop_rgb)


@pytest.mark.faces
def test_tampered_embedding_is_caught_from_the_crop(ward, engine, faces_dir: Path, face_engine) -> None:
    """The device sends an impostor's real crop with the enrolled patient's embedding, so it would pass."""
    world, (device, _) = ward
    a = world.patients["h1:a"]
    enrolled, _ = _burst(face_engine, faces_dir / "people" / "george_w_bush" / "01.jpg")
    _enroll_real(engine, a.person_id, enrolled, face_engine.tag)
    forged, _ = _burst(face_engine, faces_dir / "people" / "george_w_bush" / "02.jpg")  # the patient's face
    _, impostor_crop = _burst(face_engine, faces_dir / "people" / "colin_powell" / "01.jpg")
    # The server decides on its own encoding of the crop: the impostor's face, not the forged embedding.
    verdict = _upload(device, _tasks(device)[a.admission_id], forged, crop=impostor_crop,
                      engine_version=face_engine.tag).json()["verdict"]
    assert verdict == "impersonated"
    flags = _flags_when_checked(engine, 1, timeout_s=120)
    assert _kinds(flags) == ["impersonated", "tampered_evidence"]
    (tampered,) = [f for f in flags if f.kind == FlagKind.TAMPERED_EVIDENCE]
    tolerance = face_engine.settings.profile_of().tamper_tolerance
    assert tampered.details["reason"] == "embedding_differs_from_crop" and tampered.details["distance"] > tolerance


def _enroll_real(engine, person_id: int, vector: np.ndarray, tag: str) -> None:
    """Replaces the synthetic face build_world enrolled with a real one of the test's engine."""
    with Session(engine) as db:
        for row in db.exec(select(FaceEmbedding).where(FaceEmbedding.insured_person_id == person_id)):
            row.is_active = False
            db.add(row)
        add_embedding(db, person_id=person_id, vector=vector, source="test", engine_version=tag)
        db.commit()


@pytest.mark.faces
def test_genuine_crops_pass_and_verified_crops_are_dropped(ward, engine, faces_dir: Path, face_engine) -> None:
    """Real embeddings with their own crops: no tampering found; the verified crop is dropped once checked,
    the impostor's is kept as evidence."""
    world, (device, _) = ward
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    enrolled, _ = _burst(face_engine, faces_dir / "people" / "george_w_bush" / "01.jpg")
    _enroll_real(engine, a.person_id, enrolled, face_engine.tag)
    other, _ = _burst(face_engine, faces_dir / "people" / "hugo_chavez" / "01.jpg")
    _enroll_real(engine, b.person_id, other, face_engine.tag)
    tasks = _tasks(device)
    embedding_a, crop_a = _burst(face_engine, faces_dir / "people" / "george_w_bush" / "02.jpg")
    embedding_b, crop_b = _burst(face_engine, faces_dir / "people" / "tony_blair" / "03.jpg")
    tag = face_engine.tag
    assert _upload(device, tasks[a.admission_id], embedding_a, crop=crop_a, engine_version=tag).json()["verdict"] \
        == "verified"
    assert _upload(device, tasks[b.admission_id], embedding_b, crop=crop_b, engine_version=tag).json()["verdict"] \
        == "impersonated"
    flags = _flags_when_checked(engine, 2, timeout_s=120)
    assert _kinds(flags) == ["impersonated"]
    with Session(engine) as db:
        crops = {r.task_id: r.face_crop_jpeg for r in db.exec(select(CheckResult))}
    assert crops[tasks[a.admission_id].task_id] is None
    assert crops[tasks[b.admission_id].task_id] == crop_b


@pytest.mark.faces
def test_screen_photo_is_a_spoof(ward, engine, faces_dir: Path, face_engine) -> None:
    """A phone screen held to the camera: the device's liveness check fails and the server says spoof."""
    world, (device, _) = ward
    a = world.patients["h1:a"]
    image = load_image_file(faces_dir / "spoof" / "spoof_F2.jpg", face_engine.settings)
    burst = face_engine.check_burst([image, image, image])
    assert burst.encoding is not None and burst.crop_rgb is not None and not burst.liveness.is_live
    crop = crop_to_jpeg(burst.crop_rgb)
    liveness = LivenessReport(is_live=False, score=burst.liveness.score, blink_detected=burst.liveness.blink_detected,
                              passive_score=burst.liveness.passive_score, reasons=list(burst.liveness.reasons))
    upload = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=_tasks(device)[a.admission_id].task_id,
                          nonce=_tasks(device)[a.admission_id].nonce, outcome=CaptureOutcome.SPOOF,
                          captured_at=datetime.now(UTC), embedding=[float(x) for x in burst.encoding],
                          liveness=liveness, engine_version=face_engine.tag,
                          face_crop_jpeg_b64=base64.b64encode(crop).decode(),
                          evidence_sha256=hashlib.sha256(crop).hexdigest(),
                          scene_jpeg_b64=factories.scene_b64(a.bed_id))
    response = device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                           headers={"content-type": "application/json"})
    assert response.json()["verdict"] == "spoof"
    assert "spoof" in _kinds(_flags_when_checked(engine, 1))




# --- liveness: the key frames must show the task's challenge ----------------------------------------------
TURNS = [Action.TURN_RIGHT, Action.TURN_LEFT]


@pytest.fixture(scope="module")
def turning_clip(faces_dir: Path) -> Any:
    """The clip of a real head turning right, then left (video_liveness README), decoded and tracked once."""
    if not (faces_dir / "video_liveness" / "tran_real_headturns.mp4").exists():
        pytest.skip("../shared/faces/video_liveness not present")
    from tests.engine.sessions import load_clip

    return load_clip(str(faces_dir / "video_liveness"), "tran_real_headturns.mp4")


def _set_challenge(engine, tasks: list[TaskRead], challenge: list[Action]) -> None:
    """The server draws each task's challenge at random; these tests fix it to what the clip does."""
    with Session(engine) as db:
        for task in tasks:
            row = db.get(CheckTask, task.task_id)
            assert row is not None
            row.challenge = [a.value for a in challenge]
            db.add(row)
        db.commit()


def _live_upload(device: httpx.Client, task: TaskRead, embedding: np.ndarray, session: CaptureSession | None,
                 challenge: list[Action], frames: list[KeyFrame] | None = None) -> httpx.Response:
    liveness = LivenessReport(is_live=True, score=0.9, passive_score=0.9, method=LivenessMethod.CHALLENGE,
                              challenge=challenge)
    upload = ResultUpload(
        idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC), embedding=[float(x) for x in embedding],
        liveness=liveness, key_frames=frames or [], session=session,
        **factories.synthetic_evidence(embedding, task.bed_id))
    return device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _honest_session(clip: Any, task: TaskRead, challenge: list[Action]) -> CaptureSession:
    """The session a device films of a patient doing the task's challenge at its drawn prompt times."""
    from tests.engine.sessions import prompt_aligned

    burst = prompt_aligned(clip, challenge, task.nonce, random.Random(task.task_id))
    settings = EngineSettings()
    wire, _ = capture_session(burst.frames, burst.times_s, burst.track, challenge, burst.prompts_s, settings)
    return wire


def _still_session(clip: Any, task: TaskRead) -> CaptureSession:
    """What a lying device sends: one neutral frame of the patient, again and again, over the challenge's time."""
    from tests.engine.sessions import Burst

    prompts = prompt_schedule(task.nonce, 2)
    neutral = clip.at(1.0)
    frame = next(f for f in clip.track.tracked if f.index >= neutral)
    times = [k / 5 for k in range(int((prompts[-1] + 3.0) * 5))]
    track = FaceTrack(len(times), clip.track.frame_size, [TrackedFrame(k, t, frame.points, frame.box, True)
                                                         for k, t in enumerate(times)])
    still = Burst([clip.frames[frame.index]] * len(times), times, track, TURNS, prompts, "still")
    wire, _ = capture_session(still.frames, still.times_s, still.track, TURNS, prompts, EngineSettings())
    return wire


@pytest.mark.faces
def test_a_session_that_shows_no_challenge_is_a_liveness_mismatch_and_not_verified(ward, engine,
                                                                                     turning_clip) -> None:
    """Both devices say `is_live`; only one films the turns. The server re-judges each capture session itself
    (landmarks, each action after its prompt, the 3-D test) and flags the other: its verdict is overruled."""
    world, (device, _) = ward
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    tasks = _tasks(device)
    _set_challenge(engine, [tasks[a.admission_id], tasks[b.admission_id]], TURNS)
    tasks = _tasks(device)
    assert tasks[a.admission_id].challenge == TURNS  # the device receives the challenge with the nonce
    assert tasks[a.admission_id].challenge_prompts_s == prompt_schedule(tasks[a.admission_id].nonce, 2)
    honest = _honest_session(turning_clip, tasks[a.admission_id], TURNS)
    still = _still_session(turning_clip, tasks[b.admission_id])
    rng = np.random.default_rng(15)
    assert _live_upload(device, tasks[a.admission_id], photo_of(a.face, rng), honest,
                        TURNS).json()["verdict"] == "verified"
    assert _live_upload(device, tasks[b.admission_id], photo_of(b.face, rng), still,
                        TURNS).json()["verdict"] == "verified"
    flags = _flags_when_checked(engine, 2, timeout_s=180)
    assert {"liveness_mismatch", "spoof"} <= set(_kinds(flags))
    assert all(f.admission_id == b.admission_id for f in flags)  # the honest session raised nothing
    mismatch = next(f for f in flags if f.kind == FlagKind.LIVENESS_MISMATCH)
    assert mismatch.admission_id == b.admission_id and mismatch.details["reason"] == "session_fails"
    assert "not_done:turn_right" in mismatch.details["found"]
    with Session(engine) as db:  # the verified check's session is dropped with its crop; the flagged kept
        verdicts = {t.id: t.verdict for t in db.exec(select(CheckTask))}
        kept = {r.task_id: [k.jpeg is not None for k in db.exec(select(StoredKeyFrame)
                                                                 .where(StoredKeyFrame.result_id == r.id))]
                for r in db.exec(select(CheckResult))}
    assert verdicts[tasks[a.admission_id].task_id] == Verdict.VERIFIED
    assert verdicts[tasks[b.admission_id].task_id] == Verdict.SPOOF
    assert kept[tasks[a.admission_id].task_id] == [False] * len(honest.frames)
    assert kept[tasks[b.admission_id].task_id] == [True] * len(still.frames)


@pytest.mark.faces
def test_another_tasks_session_or_a_live_claim_without_one_is_not_verified(ward, engine, turning_clip) -> None:
    world, (device, _) = ward
    a, b = world.patients["h1:a"], world.patients["h1:b"]
    tasks = _tasks(device)
    _set_challenge(engine, [tasks[a.admission_id], tasks[b.admission_id]], [Action.BLINK, Action.LOOK_UP])
    tasks = _tasks(device)
    rng = np.random.default_rng(16)
    # a: a recorded session of another challenge; b: live claimed with stills only (no session): refused.
    recorded = _honest_session(turning_clip, tasks[a.admission_id], TURNS)
    _live_upload(device, tasks[a.admission_id], photo_of(a.face, rng), recorded, [Action.BLINK, Action.LOOK_UP])
    refused = _live_upload(device, tasks[b.admission_id], photo_of(b.face, rng), None,
                           [Action.BLINK, Action.LOOK_UP], frames=[_jpeg_frame(160, 120)])
    assert refused.status_code == 422 and refused.json()["code"] == "session_missing"
    flags = _flags_when_checked(engine, 1, timeout_s=180)
    assert _kinds(flags) == ["liveness_mismatch", "spoof"]
    mismatch = next(f for f in flags if f.kind == FlagKind.LIVENESS_MISMATCH)
    assert mismatch.admission_id == a.admission_id and mismatch.details["reason"] == "session_fails"


def test_a_key_frame_that_is_not_a_jpeg_is_refused_at_upload(ward, engine) -> None:
    world, (device, _) = ward
    a = world.patients["h1:a"]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, format="PNG")
    png = buffer.getvalue()
    frame = KeyFrame(role="neutral", time_s=0.0, jpeg_b64=base64.b64encode(png).decode(),
                     sha256=hashlib.sha256(png).hexdigest())
    task = _tasks(device)[a.admission_id]
    response = _live_upload(device, task, photo_of(a.face, np.random.default_rng(17)), None, task.challenge,
                             frames=[frame])
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    with Session(engine) as db:
        assert db.exec(select(CheckResult)).all() == []


def _jpeg_frame(width: int, height: int, role: str = "neutral") -> KeyFrame:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    return KeyFrame(role=role, time_s=0.0, jpeg_b64=base64.b64encode(data).decode(),
                    sha256=hashlib.sha256(data).hexdigest())


def test_key_frames_are_checked_in_the_evidence_step_within_the_apps_limits(tmp_path: Path) -> None:
    """The crop, the scene and the key frames are one evidence step before the write gate; the key-frame limits
    are the app's settings. Key frames of a result without a face are checked too: none is stored unchecked."""
    from server.app import create_app
    from server.checks.evidence import Evidence
    from server.settings import ServerSettings

    app = create_app(ServerSettings(database_url=f"sqlite:///{tmp_path / 'k.db'}", run_scheduler=False,
                                    key_frame_max_side_px=200), EngineSettings())
    encoder = app.state.crop_encoder
    embedding = photo_of(identity(np.random.default_rng(18)), np.random.default_rng(19))
    face = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=1, nonce="n" * 16,
                        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC),
                        embedding=[float(x) for x in embedding], liveness=LIVE,
                        key_frames=[_jpeg_frame(200, 150), _jpeg_frame(160, 120, "turn_left")],
                        **factories.synthetic_evidence(embedding, 1))
    evidence = encoder.evidence_for(face)
    assert isinstance(evidence, Evidence) and evidence.crop is not None and evidence.scene is not None
    assert [(k.position, k.role) for k in evidence.key_frames] == [(0, "neutral"), (1, "turn_left")]
    too_big = encoder.evidence_for(face.model_copy(update={"key_frames": [_jpeg_frame(201, 150)]}))
    assert not isinstance(too_big, Evidence) and too_big.code.value == "invalid_input"
    lying = _jpeg_frame(64, 48).model_copy(update={"sha256": "0" * 64})
    empty = ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=1, nonce="n" * 16,
                         outcome=CaptureOutcome.BED_EMPTY, captured_at=datetime.now(UTC), key_frames=[lying])
    refused = encoder.evidence_for(empty)
    assert not isinstance(refused, Evidence) and "sha256" in refused.message
