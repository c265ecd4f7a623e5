"""The outbox: results committed before upload, one per task, repaired after a crash, evidence dropped on ack."""

from __future__ import annotations

import stat
from datetime import UTC, datetime

import pytest

from edge_client.check import bed_empty
from edge_client.outbox import AlreadyAnswered, Outbox, ResultState
from models.verdicts import Verdict
from models.wire import ResultAck, TaskBatch
from tests.edge.helpers import task


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite3")
    yield box
    box.close()


def test_result_is_committed_and_survives_reopening(tmp_path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    record = bed_empty(task(1), "went home")
    box.add_result(record.upload, bed_label="01", local_verdict="absent")
    box.close()  # nothing flushed by hand: the insert was committed
    reopened = Outbox(tmp_path / "o.sqlite3")
    [stored] = reopened.results()
    assert stored.state == ResultState.PENDING and stored.upload() == record.upload
    assert stat.S_IMODE((tmp_path / "o.sqlite3").stat().st_mode) == 0o600
    reopened.close()


def test_one_task_gets_one_result(outbox) -> None:
    outbox.add_result(bed_empty(task(1), "").upload, bed_label="01", local_verdict="absent")
    with pytest.raises(AlreadyAnswered):
        outbox.add_result(bed_empty(task(1), "again").upload, bed_label="01", local_verdict="absent")


def test_interrupted_upload_goes_back_to_pending_with_the_same_key(outbox) -> None:
    outbox.add_result(bed_empty(task(1), "").upload, bed_label="01", local_verdict="absent")
    claimed = outbox.next_pending()
    assert claimed is not None and outbox.next_pending() is None  # claimed rows are not handed out twice
    assert outbox.repair() == 1
    again = outbox.next_pending()
    assert again is not None and again.idempotency_key == claimed.idempotency_key and again.attempts == 2


def test_ack_drops_the_evidence_and_keeps_the_receipt(outbox) -> None:
    outbox.add_result(bed_empty(task(1), "").upload, bed_label="01", local_verdict="absent")
    claimed = outbox.next_pending()
    outbox.mark_sent(claimed.id, ResultAck(task_id=1, verdict=Verdict.ABSENT, server_time=datetime.now(UTC)))
    [stored] = outbox.results()
    assert stored.state == ResultState.SENT and stored.payload is None and stored.server_verdict == "absent"


def test_answered_tasks_stay_answered_and_closed_ones_disappear(outbox) -> None:
    now = datetime.now(UTC)
    assert [t.task_id for t in outbox.store_tasks(TaskBatch(server_time=now, tasks=[task(1), task(2, "02")]))] == [1, 2]
    outbox.add_result(bed_empty(task(1), "").upload, bed_label="01", local_verdict="absent")
    # The server lists task 1 until the result arrives; task 2 was closed there (e.g. exempt).
    assert outbox.store_tasks(TaskBatch(server_time=now, tasks=[task(1)])) == []
    assert outbox.open_tasks() == []
