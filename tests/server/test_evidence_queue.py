"""The evidence queue (server/evidence/queue.py): claims are disjoint, a lease that runs out is taken again,
a stopped worker's claims go back at once, and progress counts what is checked and what is in hand."""

from __future__ import annotations

import time

from sqlalchemy import update
from sqlmodel import Session, col, select

from models.verdicts import CaptureOutcome
from server.campaigns.service import create_campaign
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.db import utcnow
from server.devices.service import pair_device
from server.evidence import queue
from tests.factories import build_world, pairing_code


def _results(db: Session, n: int) -> list[int]:
    world = build_world(db, hospitals_n=1, patients_per_ward=[str(i) for i in range(n)], place_references=False)
    campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    device, _ = pair_device(db, code=pairing_code(db, world.ward_ids[0]), name="test")
    tasks = db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id).order_by(col(CheckTask.id))).all()
    results = [CheckResult(task_id=t.id or 0, device_id=device.id or 0, idempotency_key=f"q-{t.id}",
                           outcome=CaptureOutcome.BED_EMPTY, captured_at=utcnow()) for t in tasks]
    db.add_all(results)
    db.commit()
    return sorted(r.id or 0 for r in results)


def test_two_workers_claim_disjoint_batches_in_result_order_until_the_queue_is_empty(db: Session) -> None:
    ids = _results(db, 7)
    first = queue.claim(db, worker="a", limit=4, lease_s=60)
    second = queue.claim(db, worker="b", limit=4, lease_s=60)
    assert first == ids[:4] and second == ids[4:]
    assert queue.claim(db, worker="c", limit=4, lease_s=60) == []
    assert queue.progress(db) == queue.EvidenceProgress(checked=0, total=7, in_hand=7)


def test_a_claim_whose_lease_ran_out_is_taken_by_another_worker(db: Session) -> None:
    ids = _results(db, 3)
    assert queue.claim(db, worker="died", limit=10, lease_s=0.2) == ids
    assert queue.claim(db, worker="other", limit=10, lease_s=60) == []  # still held
    time.sleep(0.4)
    assert queue.claim(db, worker="other", limit=10, lease_s=60) == ids
    owners = set(db.exec(select(CheckResult.evidence_claimed_by).where(col(CheckResult.id).in_(ids))))
    assert owners == {"other"}


def test_released_claims_go_back_at_once_and_checked_results_are_never_claimed(db: Session) -> None:
    ids = _results(db, 4)
    claimed = queue.claim(db, worker="a", limit=10, lease_s=600)
    db.execute(update(CheckResult).where(col(CheckResult.id) == ids[0])
               .values(evidence_checked_at=utcnow(), evidence_claimed_by=None, evidence_claimed_until=None))
    db.commit()
    queue.release(db, worker="someone-else", ids=claimed)  # not theirs: nothing changes
    assert queue.claim(db, worker="b", limit=10, lease_s=600) == []
    queue.release(db, worker="a", ids=claimed)
    assert queue.claim(db, worker="b", limit=10, lease_s=600) == ids[1:]
    assert queue.progress(db) == queue.EvidenceProgress(checked=1, total=4, in_hand=3)
