"""The deadline sweep and the upload race: results arriving within ±2 s of the deadline while the sweep runs
are each either on time (and never flagged overdue) or late (and the overdue flag they contradict superseded).

The big run drives the server's own upload and sweep functions from threads, each with its own session as in
the server (the write gate on SQLite, row locks on PostgreSQL); the smaller run goes through a real server
with its scheduler sweeping.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from models.verdicts import CaptureOutcome, FlagKind, Verdict
from models.wire import DEVICE_PREFIX, ResultBatch, ResultUpload, TaskBatch
from server.app import create_app
from server.campaigns.service import create_campaign
from server.campaigns.tables import Campaign, CheckTask
from server.checks import service as check_service
from server.checks.tables import CheckResult
from server.db import gated_session, utcnow
from server.devices.service import pair_device
from server.devices.tables import Device
from server.flags.tables import Flag, FlagStatus
from server.simulation.embeddings import photo_of
from tests import factories
from tests.fixtures.live_server import make_settings
from tests.server.test_device_api import LIVE

WINDOW_S = 2.0
BATCH = 20
log = logging.getLogger(__name__)


@dataclass
class Outcome:
    results: int
    on_time: int
    late: int
    overdue_flags: int
    superseded: int


def _upload(task: CheckTask, face: np.ndarray, captured_at: datetime) -> ResultUpload:
    embedding = photo_of(face, np.random.default_rng(task.id))
    return ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.id or 0, nonce=task.nonce,
                        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=captured_at, embedding=list(embedding),
                        liveness=LIVE, **factories.synthetic_evidence(embedding, task.bed_id))


def _set_deadline(db: Session, campaign_id: int, deadline: datetime) -> None:
    db.execute(update(CheckTask).where(col(CheckTask.campaign_id) == campaign_id).values(deadline_at=deadline))
    db.execute(update(Campaign).where(col(Campaign.id) == campaign_id).values(deadline_at=deadline))
    db.commit()


def _judge(db: Session, campaign_id: int) -> Outcome:
    """Asserts the rule on every result of the campaign and returns the figures."""
    results = list(db.exec(select(CheckResult, CheckTask).join(CheckTask, col(CheckTask.id) == CheckResult.task_id)
                           .where(CheckTask.campaign_id == campaign_id)))
    flags = list(db.exec(select(Flag).where(Flag.campaign_id == campaign_id, Flag.kind == FlagKind.OVERDUE)))
    by_task: dict[int, list[Flag]] = {}
    for flag in flags:
        by_task.setdefault(flag.task_id or 0, []).append(flag)
    for result, task in results:
        assert task.verdict == Verdict.VERIFIED and task.result_id == result.id
        overdue = by_task.get(task.id or 0, [])
        if not result.late:
            assert overdue == [], f"on-time result #{result.id} also flagged overdue"
            assert result.received_at <= task.deadline_at
        else:
            assert result.received_at > task.deadline_at
        assert all(f.status == FlagStatus.SUPERSEDED for f in overdue), "a verified task with an open overdue flag"
    late = sum(r.late for r, _ in results)
    return Outcome(len(results), len(results) - late, late, len(flags),
                   sum(f.status == FlagStatus.SUPERSEDED for f in flags))


def _run_at(times: list[float], work: Callable[[int], None], threads: int) -> None:
    """Calls work(i) at monotonic time times[i] (or as soon after as a worker is free)."""
    order = sorted(range(len(times)), key=times.__getitem__)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not order:
                    return
                i = order.pop(0)
            delay = times[i] - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                work(i)
            except BaseException as e:  # noqa: BLE001  (re-raised in the test's thread)
                errors.append(e)
                return

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]


@pytest.mark.slow
def test_a_thousand_uploads_around_the_deadline_are_never_both_on_time_and_flagged_overdue(db_url):
    app = create_app(make_settings(db_url))
    state = app.state
    engine, gate = state.engine, state.write_gate
    hospitals_n, per_ward = 10, 100
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=hospitals_n, patients_per_ward=[f"p{i}" for i in range(per_ward)],
                                      place_references=False)
        devices = {}
        for ward_id in world.ward_ids:
            device, _ = pair_device(db, code=factories.pairing_code(db, ward_id), name="tablet", allow_synthetic=True)
            devices[ward_id] = device.id
        db.commit()
        campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
        tasks = list(db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id).order_by(CheckTask.id)))
    assert len(tasks) == hospitals_n * per_ward == 1000
    faces = {p.admission_id: p.face for p in world.patients.values()}
    captured_at = datetime.now(UTC)
    uploads = [_upload(t, faces[t.admission_id], captured_at) for t in tasks]
    evidence = check_service.prepare_evidence(state.crop_encoder, uploads)

    lead_s = 1.5  # time for the threads to start before the first arrival
    start = time.monotonic()
    deadline = utcnow() + timedelta(seconds=lead_s + WINDOW_S)
    with Session(engine) as db:
        _set_deadline(db, campaign.id or 0, deadline)
    # As devices sync their outboxes: batches of BATCH results of one ward, each batch at a random moment.
    batches = [list(range(i, i + BATCH)) for i in range(0, len(tasks), BATCH)]
    assert all(len({tasks[i].ward_id for i in batch}) == 1 for batch in batches)
    rng = random.Random(26)
    arrivals = [start + lead_s + rng.uniform(0, 2 * WINDOW_S) for _ in batches]
    done = threading.Event()

    def upload(b: int) -> None:
        batch = batches[b]
        with closing(gated_session(engine, gate)) as db:
            device = db.get(Device, devices[tasks[batch[0]].ward_id])
            assert device is not None
            outcomes = check_service.submit_results(
                db, device=device, uploads=[uploads[i] for i in batch], engine_settings=state.engine_settings,
                encoder=state.crop_encoder, evidence=[evidence[i] for i in batch], clock_tolerance_s=300.0)
            assert all(isinstance(o, check_service.Accepted) for o in outcomes), outcomes

    def sweep() -> None:
        while not done.is_set():
            with gate, Session(engine, expire_on_commit=False) as db:
                check_service.sweep_deadlines(db)
            done.wait(0.005)

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    try:
        _run_at(arrivals, upload, threads=8)
    finally:
        done.set()
        sweeper.join()
    with Session(engine) as db:
        outcome = _judge(db, campaign.id or 0)
    engine.dispose()
    log.info("deadline race: %s", outcome)
    assert outcome.results == 1000
    # The window straddles the deadline: both sides were exercised, and the sweep raced the late half.
    assert outcome.on_time > 0 and outcome.late > 0 and outcome.overdue_flags > 0
    assert outcome.superseded == outcome.overdue_flags


def test_uploads_around_the_deadline_through_a_real_server_with_its_sweep(engine, live_server):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=[f"p{i}" for i in range(50)],
                                      place_references=False)
        codes = [factories.pairing_code(db, w) for w in world.ward_ids]
    server = live_server(run_scheduler=True, sweep_interval_s=0.05)
    faces = {p.admission_id: p.face for p in world.patients.values()}
    clients = []
    for code in codes:
        client = httpx.Client(base_url=server.url, timeout=60)
        paired = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()
        client.headers["authorization"] = f"Bearer {paired['token']}"
        clients.append(client)
    with Session(engine, expire_on_commit=False) as db:
        campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    batches = [TaskBatch.model_validate(c.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": 5}).json()).tasks
               for c in clients]
    assert [len(b) for b in batches] == [50, 50]
    captured_at = datetime.now(UTC)
    jobs = [(client, _upload_for_wire(task, faces[task.admission_id], captured_at))
            for client, batch in zip(clients, batches, strict=True) for task in batch]
    lead_s = 1.0
    start = time.monotonic()
    with Session(engine) as db:
        _set_deadline(db, campaign.id or 0, utcnow() + timedelta(seconds=lead_s + WINDOW_S))
    rng = random.Random(29)
    arrivals = [start + lead_s + rng.uniform(0, 2 * WINDOW_S) for _ in jobs]

    def post(i: int) -> None:
        client, upload = jobs[i]
        body = ResultBatch(results=[upload]).model_dump_json()
        response = client.post(f"{DEVICE_PREFIX}/results/batch", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == 200 and "ack" in response.json()["items"][0], response.text

    try:
        _run_at(arrivals, post, threads=4)
    finally:
        for client in clients:
            client.close()
    time.sleep(0.3)  # the last sweep
    with Session(engine) as db:
        outcome = _judge(db, campaign.id or 0)
    log.info("deadline race: %s", outcome)
    assert outcome.results == 100 and outcome.on_time > 0 and outcome.late > 0


def _upload_for_wire(task, face: np.ndarray, captured_at: datetime) -> ResultUpload:
    embedding = photo_of(face, np.random.default_rng(task.task_id))
    return ResultUpload(idempotency_key=uuid.uuid4().hex, task_id=task.task_id, nonce=task.nonce,
                        outcome=CaptureOutcome.FACE_CAPTURED, captured_at=captured_at, embedding=list(embedding),
                        liveness=LIVE, **factories.synthetic_evidence(embedding, task.bed_id))
