"""A rooted tablet, scripted: its own HTTP client against a real server on loopback (issue 25).

The hospital holds the tablet, so whatever the tablet reports is its word. Each attack below is a well-formed
upload the device API accepts as a request; none may end `verified`: each gets its flag or refusal with a stable
reason code, from what the server re-judges itself (the capture session, several of its faces, the method the task
and the device allow). A genuine session of the same patient, uploaded the same way, is verified with no flag, so
each refusal is the attack's and not the harness's.

Faces are real (../shared/faces/video_liveness): the patient is the man of tran_real_headturns.mp4, enrolled
from frames late in the clip; another man is the one of liveportrait_d13_talking_blinks.mp4.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from models.faces import crop_to_jpeg
from models.faces.engine import FaceEngine
from models.faces.liveness.actions import Action, LivenessMethod
from models.faces.liveness.session import capture_session
from models.faces.liveness.track import FaceTrack, TrackedFrame
from models.settings import EngineSettings
from models.verdicts import CaptureOutcome, FlagKind, Verdict
from models.wire import DEVICE_PREFIX, CaptureSession, LivenessReport, ResultUpload, TaskBatch, TaskRead
from server.campaigns.service import create_campaign
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.flags.tables import Flag
from server.persons.service import add_embedding
from server.persons.tables import FaceEmbedding
from tests import factories
from tests.engine.sessions import Burst, load_clip, prompt_aligned, replayed

pytestmark = [pytest.mark.faces, pytest.mark.slow]

# What the patient's clip does that the landmarks see (its blinks are too shallow for Face Mesh).
CHALLENGE = [Action.TURN_RIGHT, Action.TURN_LEFT]
PATIENT_CLIP, OTHER_CLIP = "tran_real_headturns.mp4", "liveportrait_d13_talking_blinks.mp4"


@pytest.fixture(scope="module")
def clips(faces_dir: Path) -> dict[str, Any]:
    folder = faces_dir / "video_liveness"
    if not (folder / PATIENT_CLIP).exists():
        pytest.skip("../shared/faces/video_liveness not present")
    return {name: load_clip(str(folder), name) for name in (PATIENT_CLIP, OTHER_CLIP)}


@pytest.fixture(scope="module")
def face_engine() -> FaceEngine:
    return FaceEngine(EngineSettings())


@pytest.fixture
def tablet(engine, live_server, tmp_path: Path, clips, face_engine):
    """One ward of six patients, a running spot check whose tasks ask CHALLENGE, one paired tablet (its own
    client). Patient `a` is enrolled with the patient clip's real face."""
    names = ["a", "b", "c", "d", "e", "f"]
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=names, seed=25)
        code = factories.pairing_code(db, world.ward_ids[0])
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
        for task in db.exec(select(CheckTask)):
            task.challenge = [a.value for a in CHALLENGE]
            db.add(task)
        patient = clips[PATIENT_CLIP]
        late = [patient.frames[patient.at(t)] for t in (18.6, 19.2, 19.8)]
        enrolled = face_engine.check_burst(late).encoding
        assert enrolled is not None
        for name in names:  # every patient is the man of the clip: only the evidence decides
            person = world.patients[f"h1:{name}"].person_id
            for row in db.exec(select(FaceEmbedding).where(FaceEmbedding.insured_person_id == person)):
                row.is_active = False
                db.add(row)
            add_embedding(db, person_id=person, vector=enrolled, source="test", engine_version=face_engine.tag)
        db.commit()
    server = live_server(run_scheduler=True, evidence_interval_s=0.2, sweep_interval_s=0.5, roll_call_times="",
                         data_dir=tmp_path)
    client = httpx.Client(base_url=server.url, timeout=60)
    token = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()["token"]
    client.headers["authorization"] = f"Bearer {token}"
    tasks = {t.admission_id: t for t in TaskBatch.model_validate(client.get(f"{DEVICE_PREFIX}/tasks").json()).tasks}
    yield world, client, {name: tasks[world.patients[f"h1:{name}"].admission_id] for name in names}
    client.close()


def _post(client: httpx.Client, task: TaskRead, burst: Burst, face_engine: FaceEngine, *,
          method: LivenessMethod = LivenessMethod.CHALLENGE, crop_from: Any = None,
          session: CaptureSession | None = None) -> httpx.Response:
    """What the rooted tablet sends: a live claim, a real crop (of `crop_from`'s middle frame, else the burst's
    neutral face), its encoding, the bed's scene and a capture session built from `burst`."""
    settings = face_engine.settings
    wire, _ = capture_session(burst.frames, burst.times_s, burst.track, burst.actions, burst.prompts_s, settings)
    source = crop_from if crop_from is not None else burst.frames[burst.track.tracked[2].index]
    found = face_engine.check_burst([source, source, source])
    assert found.encoding is not None and found.crop_rgb is not None
    crop = crop_to_jpeg(found.crop_rgb)
    upload = ResultUpload(
        idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC),
        embedding=[float(x) for x in found.encoding], engine_version=face_engine.tag,
        liveness=LivenessReport(is_live=True, score=0.95, passive_score=0.9, method=method, challenge=CHALLENGE),
        face_crop_jpeg_b64=base64.b64encode(crop).decode(), evidence_sha256=hashlib.sha256(crop).hexdigest(),
        scene_jpeg_b64=factories.scene_b64(task.bed_id), session=session if session is not None else wire)
    return client.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _checked(engine, results: int, timeout_s: float = 300.0) -> tuple[dict[int, Verdict], dict[int, list[Flag]]]:
    """Verdicts and flags by task once the evidence check has looked at `results` results."""
    deadline = time.monotonic() + timeout_s
    while True:
        with Session(engine) as db:
            done = db.exec(select(CheckResult)).all()
            if len(done) >= results and all(r.evidence_checked_at for r in done):
                verdicts = {t.id or 0: t.verdict for t in db.exec(select(CheckTask))}
                flags: dict[int, list[Flag]] = {}
                for flag in db.exec(select(Flag)):
                    flags.setdefault(flag.task_id or 0, []).append(flag)
                return verdicts, flags
        assert time.monotonic() < deadline, "the evidence check did not run"
        time.sleep(0.5)


def _changed_halfway(patient: Burst, other: Burst) -> Burst:
    """The patient's session whose second half shows the other man (spliced where the patient's face was)."""
    half = len(patient.frames) // 2
    count = len(patient.frames) - half
    frames = patient.frames[:half] + other.frames[:count]
    track = FaceTrack(len(frames), patient.track.frame_size, images=frames)
    track.tracked = [f for f in patient.track.tracked if f.index < half] + [
        TrackedFrame(half + f.index, patient.times_s[half + f.index], f.points, f.box, f.detected)
        for f in other.track.tracked if f.index < count]
    return Burst(frames, patient.times_s, track, patient.actions, patient.prompts_s, "changed halfway")


def _early(burst: Burst, task: TaskRead, clip: Any, rng: random.Random) -> Burst:
    """The patient doing each action 1.6 s before its prompt (a recording playing its own timing), reported with
    the prompts at their drawn times."""
    shifted = prompt_aligned(clip, burst.actions, task.nonce, rng, lead_s=-1.6)
    return Burst(shifted.frames, shifted.times_s, shifted.track, shifted.actions, burst.prompts_s, "early")


def test_a_rooted_tablet_verifies_nothing_the_server_did_not_see(engine, tablet, clips, face_engine) -> None:
    world, client, tasks = tablet
    patient, other = clips[PATIENT_CLIP], clips[OTHER_CLIP]
    rng = random.Random(25)

    def aligned(name: str) -> Burst:
        return prompt_aligned(patient, CHALLENGE, tasks[name].nonce, rng)

    # a: the genuine session of the patient doing the task's challenge: verified, no flag.
    assert _post(client, tasks["a"], aligned("a"), face_engine).json()["verdict"] == "verified"
    # b: a tablet saying it is the bed's fixed camera ("motion"): the task does not allow it.
    b = _post(client, tasks["b"], aligned("b"), face_engine, method=LivenessMethod.MOTION)
    assert b.status_code == 200 and b.json()["verdict"] == "unrecognised"
    # Stills instead of a sequence: three frames, or none with stills attached: refused with a reason code.
    stills = aligned("c").frames[:3]
    three = FaceTrack(3, patient.track.frame_size, [TrackedFrame(i, i * 1.5, f.points, f.box, True)
                                                  for i, f in enumerate(patient.track.tracked[:3])], images=stills)
    refused = _post(client, tasks["c"], Burst(stills, [0.0, 1.5, 3.0], three, CHALLENGE,
                                              tasks["c"].challenge_prompts_s, "stills"), face_engine)
    assert refused.status_code == 422 and refused.json()["code"] == "session_missing"
    # d: a sequence of another person doing the challenge, with the patient's crop.
    assert _post(client, tasks["d"], _other_person(other, tasks["d"]), face_engine,
                 crop_from=patient.frames[patient.at(1.0)]).status_code == 200
    # e: the patient's session whose face changes halfway to another man's.
    assert _post(client, tasks["e"], _changed_halfway(aligned("e"), _other_person(other, tasks["e"])),
                 face_engine).status_code == 200
    # f: the actions done before their prompts, the prompts reported at the times the task drew.
    assert _post(client, tasks["f"], _early(aligned("f"), tasks["f"], patient, rng), face_engine).status_code == 200

    verdicts, flags = _checked(engine, 5)

    def kinds(name: str) -> set[FlagKind]:
        return {f.kind for f in flags.get(tasks[name].task_id, [])}

    def details(name: str, kind: FlagKind) -> dict[str, Any]:
        return next(f.details for f in flags[tasks[name].task_id] if f.kind == kind)

    assert verdicts[tasks["a"].task_id] == Verdict.VERIFIED and kinds("a") == set()
    for name in "bcdef":
        assert verdicts[tasks[name].task_id] != Verdict.VERIFIED, name
    assert FlagKind.LIVENESS_MISMATCH in kinds("b")
    assert details("b", FlagKind.LIVENESS_MISMATCH)["reason"] == "liveness_method_not_allowed"
    assert verdicts[tasks["c"].task_id] == Verdict.PENDING  # refused: nothing was stored
    assert FlagKind.IDENTITY_CHANGED in kinds("d")
    assert details("d", FlagKind.IDENTITY_CHANGED)["reason"] == "another_face"
    assert FlagKind.IDENTITY_CHANGED in kinds("e")
    assert FlagKind.LIVENESS_MISMATCH in kinds("f")
    found = details("f", FlagKind.LIVENESS_MISMATCH)["found"]
    assert any(r.startswith(("before_prompt:", "not_done:")) for r in found), found


def _other_person(other: Any, task: TaskRead) -> Burst:
    """Another man at the bed over the challenge's time: the other clip played through the session's length,
    the prompts reported at the drawn times (a recording of someone else)."""
    return replayed(other, CHALLENGE, task.nonce, 0.0)
