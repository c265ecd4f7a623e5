"""Issue 26's verdict and review rules through the real server: a face clearly not the billed person is
impersonation whatever liveness said (and so is one the 1:N search names as someone else); a late upload decides
its task only with a capture made during the task's life; an appeal is decided by a third person."""

from __future__ import annotations

import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
from sqlalchemy import update
from sqlmodel import Session, col, select

from models.verdicts import CaptureOutcome, FlagKind, Verdict
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, TaskBatch
from server.campaigns.service import create_campaign
from server.campaigns.tables import Campaign, CheckTask
from server.checks.service import sweep_deadlines
from server.db import utcnow
from server.evidence.service import _name_in_flag
from server.flags.tables import Flag, FlagStatus
from server.simulation.embeddings import identity, photo_of
from tests import factories

NOT_ESTABLISHED = LivenessReport(is_live=False, score=0.2, reasons=["liveness_not_established"])
LIVE = LivenessReport(is_live=True, score=0.9, passive_score=0.9)


def _device(base: str, code: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    paired = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()
    client.headers["authorization"] = f"Bearer {paired['token']}"
    return client


def _upload(task, face: np.ndarray, liveness: LivenessReport, captured_at: datetime | None = None) -> ResultUpload:
    embedding = photo_of(face, np.random.default_rng(task.task_id))
    return ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
                        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=captured_at or datetime.now(UTC),
                        embedding=list(embedding), liveness=liveness,
                        **factories.synthetic_evidence(embedding, task.bed_id))


def _post(device: httpx.Client, upload: ResultUpload) -> httpx.Response:
    return device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                       headers={"content-type": "application/json"})


def _setting(engine, live_server, names: list[str]):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=names)
        code = factories.pairing_code(db, world.ward_ids[0])
        campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server()
    device = _device(server.url, code)
    tasks = TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": 5}).json()).tasks
    by_name = {key.split(":")[1]: p for key, p in world.patients.items()}
    return world, campaign, device, {n: next(t for t in tasks if t.admission_id == p.admission_id)
                                     for n, p in by_name.items()}, by_name


def test_a_face_clearly_not_the_billed_person_is_impersonation_even_without_established_liveness(
        engine, live_server) -> None:
    _, _, device, tasks, people = _setting(engine, live_server, ["stranger", "own"])
    with closing(device):
        stranger = _post(device, _upload(tasks["stranger"], identity(np.random.default_rng(7)), NOT_ESTABLISHED))
        own = _post(device, _upload(tasks["own"], people["own"].face, NOT_ESTABLISHED))
    assert stranger.status_code == own.status_code == 200
    assert stranger.json()["verdict"] == "impersonated"
    assert own.json()["verdict"] == "unrecognised"  # the billed person's face without liveness: a review
    with Session(engine) as db:
        flags = {f.admission_id: f for f in db.exec(select(Flag))}
    flag = flags[people["stranger"].admission_id]
    assert flag.kind == FlagKind.IMPERSONATED and flag.details["reason"] == "clearly_not_the_person"
    assert flags[people["own"].admission_id].kind == FlagKind.UNRECOGNISED


def test_an_unrecognised_face_the_search_names_as_someone_else_becomes_impersonation(db) -> None:
    world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a", "b"], place_references=False)
    campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    task = db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id,
                                           CheckTask.admission_id == world.patients["h1:a"].admission_id)).one()
    task.verdict = Verdict.UNRECOGNISED
    flag = Flag(kind=FlagKind.UNRECOGNISED, hospital_id=task.hospital_id, campaign_id=campaign.id, task_id=task.id,
                admission_id=task.admission_id, insured_person_id=task.insured_person_id,
                details={"reason": "liveness_not_established"})
    db.add_all([task, flag])
    db.commit()
    own = {"named": [{"kind": "insured_person", "insured_person_id": task.insured_person_id, "distance": 0.1}]}
    _name_in_flag(db, task, {**own, "outcome": "named"})
    assert (task.verdict, flag.kind) == (Verdict.UNRECOGNISED, FlagKind.UNRECOGNISED)  # named as themself
    other = world.patients["h1:b"].person_id
    _name_in_flag(db, task, {"named": [{"kind": "insured_person", "insured_person_id": other, "distance": 0.2}],
                             "outcome": "named"})
    db.commit()
    db.refresh(flag)
    assert (task.verdict, flag.kind) == (Verdict.IMPERSONATED, FlagKind.IMPERSONATED)
    assert flag.details["reason"] == "named_someone_else"


def test_a_late_upload_decides_its_task_only_with_a_capture_made_during_the_task(engine, live_server) -> None:
    _, campaign, device, tasks, people = _setting(engine, live_server, ["early", "inside"])
    with Session(engine) as db:
        issued = db.exec(select(CheckTask.issued_at).where(CheckTask.campaign_id == campaign.id)).first()
        assert issued is not None
        issued = issued.replace(tzinfo=UTC) if issued.tzinfo is None else issued
        deadline = issued + timedelta(seconds=1)
        db.execute(update(CheckTask).where(col(CheckTask.campaign_id) == campaign.id).values(deadline_at=deadline))
        db.execute(update(Campaign).where(col(Campaign.id) == campaign.id).values(deadline_at=deadline))
        db.commit()
        while utcnow() <= deadline:
            time.sleep(0.1)
        assert sweep_deadlines(db) == 2
    with closing(device):
        before = _post(device, _upload(tasks["early"], people["early"].face, LIVE, issued - timedelta(minutes=1)))
        inside = _post(device, _upload(tasks["inside"], people["inside"].face, LIVE,
                                       issued + timedelta(seconds=0.5)))
    assert before.status_code == 422 and before.json()["code"] == "clock_implausible", before.text
    assert inside.status_code == 200 and inside.json()["verdict"] == "verified"
    with Session(engine) as db:
        verdicts = {t.admission_id: t.verdict for t in db.exec(select(CheckTask))}
        overdue = {f.admission_id: f.status for f in db.exec(select(Flag).where(Flag.kind == FlagKind.OVERDUE))}
    assert verdicts[people["early"].admission_id] == Verdict.OVERDUE  # the capture dated before issue decides nothing
    assert overdue == {people["early"].admission_id: FlagStatus.OPEN,
                       people["inside"].admission_id: FlagStatus.SUPERSEDED}
