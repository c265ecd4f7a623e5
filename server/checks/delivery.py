"""Task delivery to ward devices: the pending tasks of a ward, and the watermark long-polls wait on."""

from __future__ import annotations

import asyncio
import time

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from models.wire import TaskBatch, TaskRead
from server.campaigns import service as campaign_service
from server.campaigns.tables import CheckTask
from server.db import WriteGate, gated_session, utcnow
from server.hospitals.tables import Bed


def task_read(task: CheckTask, bed_labels: dict[int, str]) -> TaskRead:
    return TaskRead(task_id=task.id or 0, campaign_id=task.campaign_id, nonce=task.nonce,
                    admission_id=task.admission_id, insured_person_id=task.insured_person_id, bed_id=task.bed_id,
                    bed_label=bed_labels.get(task.bed_id, ""), ward_id=task.ward_id, deadline_at=task.deadline_at,
                    issued_at=task.issued_at, challenge=task.challenge or [])


def pending_batch(engine: Engine, gate: WriteGate, ward_id: int, device_id: int | None = None) -> TaskBatch:
    """The ward's pending tasks, first deliveries noted. Its own short session: a long-poll's request
    must not hold a pooled connection for the half minute it waits."""
    with gated_session(engine, gate) as db:
        tasks = campaign_service.pending_tasks_for_ward(db, ward_id=ward_id, device_id=device_id)
        fresh = [t.id or 0 for t in tasks if t.delivered_at is None]
        if fresh:
            campaign_service.mark_delivered(db, task_ids=fresh)
        labels = dict(db.exec(select(Bed.id, Bed.label).where(col(Bed.id).in_({t.bed_id for t in tasks}))).all())
        return TaskBatch(server_time=utcnow(), tasks=[task_read(t, labels) for t in tasks])  # type: ignore[arg-type]


class TaskWatermark:
    """The newest task id, read at most once per poll interval per process and shared by all waiting devices.

    New work reaches a ward only as new tasks, so a waiting long-poll re-queries its ward only when this has
    moved: a province's thousands of idle devices then cost one tiny query per interval, not one each.
    """

    def __init__(self, engine: Engine, interval_s: float) -> None:
        self.engine, self.interval_s = engine, interval_s
        self._value: int | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def current(self) -> int:
        async with self._lock:
            if self._value is None or time.monotonic() - self._read_at >= self.interval_s:
                self._value = await run_in_threadpool(self._read)
                self._read_at = time.monotonic()
            return self._value

    def _read(self) -> int:
        with Session(self.engine) as db:
            return int(db.exec(select(func.max(CheckTask.id))).one() or 0)
