"""Upload retries against a scripted transport: retry network errors and 5xx, record a final 4xx,
count a duplicate ack as sent, carry the measured clock offset."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from edge_client.api import DeviceApi
from edge_client.check import bed_empty
from edge_client.outbox import Outbox, ResultState
from edge_client.sync import Syncer
from tests.edge.helpers import ack, task


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite3")
    box.add_result(bed_empty(task(1), "").upload, bed_label="01", local_verdict="absent")
    yield box
    box.close()


def syncer(outbox: Outbox, answers: list, seen: list) -> Syncer:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    api = DeviceApi("http://server.test", "token", transport=httpx.MockTransport(handler))
    return Syncer(api, outbox, attempts=4, max_wait_s=0.01)


def test_network_errors_and_5xx_are_retried_with_the_same_key(outbox) -> None:
    seen: list = []
    answers = [httpx.ConnectError("down"), httpx.Response(503), httpx.Response(200, json=ack(1))]
    report = syncer(outbox, answers, seen).sync()
    assert report.sent == 1 and len(seen) == 3
    assert len({body["idempotency_key"] for body in seen}) == 1
    assert outbox.results()[0].state == ResultState.SENT


def test_final_4xx_is_recorded_not_retried(outbox) -> None:
    seen: list = []
    conflict = httpx.Response(409, json={"code": "nonce_replayed", "message": "nonce already used"})
    report = syncer(outbox, [conflict], seen).sync()
    assert (report.rejected, len(seen)) == (1, 1)
    stored = outbox.results()[0]
    assert stored.state == ResultState.REJECTED and "nonce_replayed" in stored.last_error
    assert syncer(outbox, [], seen).sync().sent == 0  # never sent again


def test_server_down_leaves_the_result_pending_for_a_later_sweep(outbox) -> None:
    seen: list = []
    report = syncer(outbox, [httpx.ConnectError("down")] * 4, seen).sync()
    assert report.offline and len(seen) == 4
    assert outbox.results()[0].state == ResultState.PENDING


def test_duplicate_ack_counts_as_sent(outbox) -> None:
    report = syncer(outbox, [httpx.Response(200, json=ack(1, duplicate=True))], []).sync()
    assert (report.sent, report.duplicates) == (1, 1)
    assert outbox.results()[0].duplicate


def test_clock_offset_measured_at_sync_is_sent_with_results(outbox) -> None:
    ahead = datetime.now(UTC) + timedelta(seconds=90)
    seen: list = []
    answers = [httpx.Response(200, json={"server_time": ahead.isoformat(), "device_id": 1}),
               httpx.Response(200, json=ack(1))]
    sync = syncer(outbox, answers, seen)
    sync.api.heartbeat(outbox_pending=1)
    sync.sync()
    assert abs(seen[1]["clock_offset_ms"] - 90_000) < 2_000
