"""Device API over real HTTP: idempotent uploads, nonces, device identity, ward scope, late results."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from sqlmodel import Session, func, select

from models.faces.engines import SFACE, SYNTHETIC
from models.faces.liveness.actions import HEAD_ACTIONS, CannotTakePart, LivenessMethod
from models.verdicts import CaptureOutcome
from models.wire import DEVICE_PREFIX, BatchAck, LivenessReport, ResultBatch, ResultUpload, TaskBatch, WardRoster
from server.audit.tables import AuditRecord
from server.campaigns.service import create_campaign
from server.checks.tables import CheckResult
from server.devices.service import revoke
from server.flags.tables import Flag
from server.simulation.embeddings import photo_of
from tests import factories
from tests.factories import synthetic_evidence

LIVE = LivenessReport(is_live=True, score=0.9, passive_score=0.9)


@pytest.fixture
def setting(engine, live_server):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b"])
        codes = [factories.pairing_code(db, w) for w in world.ward_ids]
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server()
    clients = []
    for code in codes:
        client = httpx.Client(base_url=server.url, timeout=30)
        paired = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code, "engine_version": SYNTHETIC.tag}).json()
        client.headers["authorization"] = f"Bearer {paired['token']}"
        client.device_id = paired["device_id"]  # type: ignore[attr-defined]
        clients.append(client)
    yield world, server, clients
    for client in clients:
        client.close()


def _tasks(client: httpx.Client) -> list:
    return TaskBatch.model_validate(client.get(f"{DEVICE_PREFIX}/tasks").json()).tasks


def _result(task, face, key: str | None = None, nonce: str | None = None) -> ResultUpload:
    embedding = photo_of(face, np.random.default_rng(0))
    return ResultUpload(idempotency_key=key or uuid.uuid4().hex, task_id=task.task_id, nonce=nonce or task.nonce,
                        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=datetime.now(UTC),
                        embedding=list(embedding), liveness=LIVE,
                        **synthetic_evidence(embedding, task.bed_id))


def _post(client: httpx.Client, upload: ResultUpload) -> httpx.Response:
    return client.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _face(world, task):
    return next(p.face for p in world.patients.values() if p.admission_id == task.admission_id)


def test_same_result_twice_is_stored_once(setting, engine) -> None:
    world, _, (device, _) = setting
    task = _tasks(device)[0]
    upload = _result(task, _face(world, task))
    first, second = _post(device, upload), _post(device, upload)
    assert first.status_code == second.status_code == 200
    assert first.json()["verdict"] == "verified" and second.json()["duplicate"] is True
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(CheckResult)).one() == 1


def test_replayed_nonce_is_rejected_and_audited(setting, engine) -> None:
    world, _, (device, _) = setting
    task = _tasks(device)[0]
    assert _post(device, _result(task, _face(world, task))).status_code == 200
    replay = _post(device, _result(task, _face(world, task)))  # a new key, the same nonce
    assert replay.status_code == 409 and replay.json()["code"] == "nonce_replayed"
    wrong = _post(device, _result(_tasks(device)[0], np.ones(128), nonce="x" * 32))
    assert wrong.status_code == 422 and wrong.json()["code"] == "nonce_mismatch"
    with Session(engine) as db:
        refused = db.exec(select(AuditRecord).where(AuditRecord.action == "result.refused")).all()
        assert {r.data["code"] for r in refused} == {"nonce_replayed", "nonce_mismatch"}


def test_a_device_cannot_answer_another_hospitals_task(setting) -> None:
    world, _, (device_a, device_b) = setting
    task_of_b = _tasks(device_b)[0]
    response = _post(device_a, _result(task_of_b, _face(world, task_of_b)))
    assert response.status_code == 403 and response.json()["code"] == "task_not_for_device"


def test_forged_and_revoked_credentials_are_refused(setting, engine) -> None:
    _, server, (device, _) = setting
    forged = httpx.get(f"{server.url}{DEVICE_PREFIX}/tasks", headers={"authorization": "Bearer forged-token"})
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_credential"
    assert httpx.get(f"{server.url}{DEVICE_PREFIX}/tasks").json()["code"] == "not_authenticated"
    with Session(engine) as db:
        revoke(db, device_id=device.device_id, actor="test")  # type: ignore[attr-defined]
    refused = device.get(f"{DEVICE_PREFIX}/tasks")
    assert refused.status_code == 401 and refused.json()["code"] == "device_revoked"


def test_roster_holds_only_the_devices_own_ward(setting) -> None:
    world, _, (device_a, _) = setting
    roster = WardRoster.model_validate(device_a.get(f"{DEVICE_PREFIX}/roster").json())
    own = {p.person_id for p in world.patients.values() if p.ward_id == roster.ward_id}
    assert {b.insured_person_id for b in roster.beds} == own
    assert all(len(b.embeddings) == 1 and len(b.embeddings[0]) == 128 for b in roster.beds)
    assert all("*" in b.display_name for b in roster.beds)  # names are masked on devices


def test_a_device_receives_only_the_embeddings_of_the_engine_it_reports(setting, engine) -> None:
    world, _, (device_a, _) = setting
    roster = WardRoster.model_validate(device_a.get(f"{DEVICE_PREFIX}/roster").json())
    assert roster.engine_version == SYNTHETIC.tag and all(b.embeddings for b in roster.beds if b.insured_person_id)
    beat = {"device_time": datetime.now(UTC).isoformat(), "engine_version": SFACE.tag}
    assert device_a.post(f"{DEVICE_PREFIX}/heartbeat", json=beat).status_code == 200
    roster = WardRoster.model_validate(device_a.get(f"{DEVICE_PREFIX}/roster").json())
    # Everyone here is enrolled with synthetic embeddings only: an sface device gets none of them.
    assert roster.engine_version == SFACE.tag and all(b.embeddings == [] for b in roster.beds)
    with Session(engine) as db:
        changed = db.exec(select(AuditRecord).where(AuditRecord.action == "device.engine_changed")).all()
    assert [(r.data["from"], r.data["to"]) for r in changed] == [(SYNTHETIC.tag, SFACE.tag)]
    # The verdict is the server's own encoding of the crop (here the labelled synthetic one), judged against
    # the person's embeddings of that encoding's engine; the device's tag only says what its embedding is.
    task = _tasks(device_a)[0]
    upload = _result(task, _face(world, task)).model_copy(update={"engine_version": SFACE.tag})
    assert _post(device_a, upload).json()["verdict"] == "verified"
    with Session(engine) as db:
        stored = db.exec(select(CheckResult).where(CheckResult.idempotency_key == upload.idempotency_key)).one()
    assert (stored.engine_version, stored.server_engine_version) == (SFACE.tag, SYNTHETIC.tag)
    unknown = {**beat, "engine_version": "some-other-engine/1"}
    response = device_a.post(f"{DEVICE_PREFIX}/heartbeat", json=unknown)
    assert response.status_code == 422 and response.json()["code"] == "unknown_engine"


def test_an_untagged_or_unknown_engine_embedding_is_refused(setting) -> None:
    world, _, (device_a, _) = setting
    task = _tasks(device_a)[0]
    for tag in ("", "made-up/1"):
        response = _post(device_a, _result(task, _face(world, task)).model_copy(update={"engine_version": tag}))
        assert response.status_code == 422 and response.json()["code"] == "unknown_engine"


def test_long_poll_returns_as_soon_as_a_spot_check_is_created(setting, engine) -> None:
    world, _, (device, _) = setting
    for task in _tasks(device):
        assert _post(device, _result(task, _face(world, task))).status_code == 200
    import threading

    def launch() -> None:
        time.sleep(1.0)
        with Session(engine) as db:
            create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")

    threading.Thread(target=launch).start()
    started = time.monotonic()
    batch = TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": 10}).json())
    waited = time.monotonic() - started
    assert len(batch.tasks) == 2 and 0.9 < waited < 3.0


def test_bad_requests_get_clear_4xx(setting) -> None:
    world, server, (device, _) = setting
    task = _tasks(device)[0]
    short = _result(task, _face(world, task)).model_dump(mode="json")
    short["embedding"] = short["embedding"][:10]
    response = device.post(f"{DEVICE_PREFIX}/results", json=short)
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    huge = device.post(f"{DEVICE_PREFIX}/results", content=b"x" * (5 * 1024 * 1024),
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"
    json_header = {"content-type": "application/json"}
    garbage = device.post(f"{DEVICE_PREFIX}/results", content=b"{not json", headers=json_header)
    assert garbage.status_code == 422
    assert httpx.post(f"{server.url}{DEVICE_PREFIX}/pair", json={"code": "WRONGCODE"}).status_code == 400


def test_a_batch_accepts_each_result_on_its_own(setting, engine) -> None:
    """One request, five results: good ones land, refused ones are refused alone and audited."""
    world, _, (device, other_device) = setting
    first, second = _tasks(device)[:2]
    foreign = _tasks(other_device)[0]
    good = _result(first, _face(world, first))
    batch = [
        good,
        _result(second, _face(world, second), nonce="x" * 32),           # wrong nonce
        _result(foreign, _face(world, foreign)),                          # another ward's task
        good,                                                            # the same key again
        _result(first, _face(world, first)),                              # a new key for an answered task
    ]
    response = device.post(f"{DEVICE_PREFIX}/results/batch",
                           content=ResultBatch(results=batch).model_dump_json(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200
    items = BatchAck.model_validate(response.json()).items
    assert [i.idempotency_key for i in items] == [u.idempotency_key for u in batch]
    assert items[0].ack is not None and items[0].ack.verdict == "verified" and not items[0].ack.duplicate
    assert [i.error.code if i.error else None for i in items[1:]] == [
        "nonce_mismatch", "task_not_for_device", None, "nonce_replayed"]
    assert items[3].ack is not None and items[3].ack.duplicate
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(CheckResult)).one() == 1
        refused = db.exec(select(AuditRecord.data).where(AuditRecord.action == "result.refused")).all()
        assert sorted(d["code"] for d in refused) == ["nonce_mismatch", "nonce_replayed", "task_not_for_device"]
    # The refused task is still open and can be answered properly afterwards.
    assert _post(device, _result(second, _face(world, second))).json()["verdict"] == "verified"


def test_an_oversized_or_empty_batch_is_refused(setting) -> None:
    _, _, (device, _) = setting
    for results in ([], [{}] * 101):
        response = device.post(f"{DEVICE_PREFIX}/results/batch", json={"results": results})
        assert response.status_code == 422


def test_each_task_carries_a_random_challenge_with_a_head_action(setting) -> None:
    _, _, (device, other) = setting
    tasks = _tasks(device) + _tasks(other)
    assert tasks and all(len(t.challenge) == 2 and set(t.challenge) & HEAD_ACTIONS for t in tasks)
    assert len({t.nonce for t in tasks}) == len(tasks)


@pytest.mark.parametrize("liveness,verdict,reason", [
    # The nurse recorded that the patient cannot take part: matched, yet never verified; a reviewer decides.
    (LivenessReport(is_live=False, score=0.0, method=LivenessMethod.CANNOT_TAKE_PART,
                    cannot_take_part=CannotTakePart.UNCONSCIOUS, reasons=["cannot_take_part:unconscious"]),
     "unrecognised", "cannot_take_part"),
    # A bed camera saw no sign of life and nothing planar: not a spoof, not verified either.
    (LivenessReport(is_live=False, score=0.2, method=LivenessMethod.MOTION,
                    reasons=["no_sign_of_life", "liveness_not_established"]), "unrecognised",
     "liveness_not_established"),
    # A photo moved in front of a bed camera moves as a plane: a spoof outright.
    (LivenessReport(is_live=False, score=0.1, method=LivenessMethod.MOTION, reasons=["planar_motion"]),
     "spoof", "liveness_failed"),
    # The passive cues at their worst do not refuse a challenge that was done.
    (LivenessReport(is_live=True, score=0.6, passive_score=0.0, method=LivenessMethod.CHALLENGE), "verified",
     "match"),
])
def test_liveness_that_cannot_be_established_goes_to_review_never_to_verified(setting, engine, liveness, verdict,
                                                                               reason) -> None:
    world, _, (device, _) = setting
    task = _tasks(device)[0]
    upload = _result(task, _face(world, task)).model_copy(update={"liveness": liveness.model_copy(
        update={"challenge": task.challenge})})
    if liveness.is_live:  # a live claim comes with its capture session (judged again by the evidence check)
        upload = upload.model_copy(update={"session": factories.blank_session()})
    response = _post(device, upload)
    assert response.status_code == 200 and response.json()["verdict"] == verdict
    if verdict != "verified":
        with Session(engine) as db:
            flag = db.exec(select(Flag).where(Flag.task_id == task.task_id)).one()
        assert flag.kind == verdict and flag.details["reason"] == reason
        assert flag.details["distance"] is not None or verdict == "spoof"  # the face was still matched
