"""Outbox -> server. Retries with exponential backoff and jitter on network errors, 5xx and 429 only;
any other 4xx is the server's final answer and is recorded (`rejected`), not retried. A duplicate ack
(the server already had this idempotency key) counts as sent."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_when_event_set,
    wait_random_exponential,
)

from edge_client.api import ApiError, DeviceApi
from edge_client.outbox import Outbox, StoredResult
from models.wire import ResultAck

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0  # left pending for a later sweep

    @property
    def offline(self) -> bool:
        return self.failed > 0


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ApiError) and error.retryable


class Syncer:
    def __init__(self, api: DeviceApi, outbox: Outbox, *, attempts: int = 6, max_wait_s: float = 30.0,
                 stop: threading.Event | None = None) -> None:
        self.api, self.outbox = api, outbox
        self.attempts, self.max_wait_s = attempts, max_wait_s
        self.stop = stop or threading.Event()

    def sync(self, limit: int | None = None) -> SyncReport:
        """Uploads pending results oldest first; stops at the first one the server cannot take now."""
        report = SyncReport()
        while (limit is None or report.sent + report.rejected < limit) and not self.stop.is_set():
            stored = self.outbox.next_pending()
            if stored is None:
                break
            if not self._send(stored, report):
                break
        return report

    def _send(self, stored: StoredResult, report: SyncReport) -> bool:
        try:
            ack = self._upload_with_retry(stored)
        except ApiError as e:
            if e.retryable:
                self.outbox.release(stored.id, str(e))
                report.failed += 1
                return False
            log.warning("result %s for task %s rejected: %s", stored.id, stored.task_id, e)
            self.outbox.mark_rejected(stored.id, str(e))
            report.rejected += 1
            return True
        self.outbox.mark_sent(stored.id, ack)
        report.sent += 1
        report.duplicates += int(ack.duplicate)
        log.info("result %s for task %s sent: %s%s", stored.id, stored.task_id, ack.verdict.value,
                 " (duplicate)" if ack.duplicate else "")
        return True

    def _upload_with_retry(self, stored: StoredResult) -> ResultAck:
        upload = stored.upload()
        if self.api.clock_offset_ms is not None:
            # Measured at this sync, so a capture made offline is dated with the freshest offset.
            upload = upload.model_copy(update={"clock_offset_ms": self.api.clock_offset_ms})
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_random_exponential(multiplier=0.5, max=self.max_wait_s),
            stop=stop_after_attempt(self.attempts) | stop_when_event_set(self.stop),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self.api.upload(upload)
        except RetryError as e:  # pragma: no cover - reraise=True hands back the last ApiError
            raise ApiError("upload retries exhausted", retryable=True) from e
        raise AssertionError("unreachable")

    def _sleep(self, seconds: float) -> None:
        # Wakes at once on shutdown instead of finishing a 30 s backoff.
        self.stop.wait(seconds)
