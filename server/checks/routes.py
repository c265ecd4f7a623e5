"""Device check API (see models/wire): task long-poll, ad-hoc task, ward roster, result upload."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from models.wire import (
    AdhocTaskRequest,
    BatchAck,
    BatchItem,
    ItemError,
    ResultAck,
    ResultBatch,
    ResultUpload,
    TaskBatch,
    TaskRead,
    WardRoster,
)
from server.checks import service
from server.checks.delivery import TaskWatermark, pending_batch, task_read
from server.checks.ward_roster import ward_roster
from server.db import Db, utcnow
from server.devices.deps import CurrentDevice

router = APIRouter(prefix="/api/v1/device", tags=["device"])


@router.get("/tasks", response_model=TaskBatch)
async def tasks(request: Request, device: CurrentDevice, wait_s: float = Query(default=0.0, ge=0.0, le=120.0)):
    """Long-poll: answers at once when tasks are pending, else waits for new tasks until `wait_s`.

    Waiting watches the database (not an in-process event), so any server process answers for any campaign.
    """
    state = request.app.state
    deadline = time.monotonic() + min(wait_s, state.settings.long_poll_max_s)
    if not hasattr(state, "task_watermark"):
        state.task_watermark = TaskWatermark(state.engine, state.settings.long_poll_interval_s)
    seen = await state.task_watermark.current()
    batch = await run_in_threadpool(pending_batch, state.engine, state.write_gate, device.ward_id, device.id)
    while not batch.tasks and time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(state.settings.long_poll_interval_s)
        latest = await state.task_watermark.current()
        if latest != seen:
            seen = latest
            batch = await run_in_threadpool(pending_batch, state.engine, state.write_gate, device.ward_id, device.id)
    return batch if batch.tasks else TaskBatch(server_time=utcnow(), tasks=[])


@router.post("/tasks/adhoc", response_model=TaskRead)
def adhoc_task(body: AdhocTaskRequest, device: CurrentDevice, db: Db, request: Request) -> TaskRead:
    """A nurse checks one bed now: a one-task campaign for the bed's current admission."""
    task, label = service.adhoc_task(db, device=device, bed_id=body.bed_id,
                                     deadline_s=request.app.state.settings.default_deadline_s)
    return task_read(task, {task.bed_id: label})


@router.get("/roster", response_model=WardRoster)
def roster(device: CurrentDevice, db: Db, request: Request) -> WardRoster:
    """The device's own ward: beds, current admissions, masked names and enrolled embeddings, nothing else.

    Embeddings are those of the device's engine only (the server's own engine until the device reports one).
    """
    return ward_roster(db, device=device, default_engine=request.app.state.engine_settings.engine_tag)


@router.post("/results", response_model=ResultAck)
def upload_result(body: ResultUpload, device: CurrentDevice, db: Db, request: Request) -> ResultAck:
    state = request.app.state
    # Checking the evidence (crop, scene, key frames) and encoding the crop is the slow part and writes nothing:
    # done before the write gate is taken.
    (evidence,) = service.prepare_evidence(state.crop_encoder, [body])
    accepted = service.submit_result(db, device=device, upload=body, engine_settings=state.engine_settings,
                                     encoder=state.crop_encoder, evidence=evidence,
                                     clock_tolerance_s=state.settings.clock_tolerance_s)
    return _ack(accepted)


@router.post("/results/batch", response_model=BatchAck)
def upload_results(body: ResultBatch, device: CurrentDevice, db: Db, request: Request) -> BatchAck:
    state = request.app.state
    evidence = service.prepare_evidence(state.crop_encoder, body.results)
    outcomes = service.submit_results(db, device=device, uploads=body.results,
                                      engine_settings=state.engine_settings, encoder=state.crop_encoder,
                                      evidence=evidence, clock_tolerance_s=state.settings.clock_tolerance_s)
    items = [
        BatchItem(idempotency_key=upload.idempotency_key, ack=_ack(outcome))
        if isinstance(outcome, service.Accepted) else
        BatchItem(idempotency_key=upload.idempotency_key,
                  error=ItemError(code=outcome.code.value, message=outcome.message, http_status=outcome.http_status))
        for upload, outcome in zip(body.results, outcomes, strict=True)
    ]
    return BatchAck(items=items, server_time=utcnow())


def _ack(accepted: service.Accepted) -> ResultAck:
    return ResultAck(task_id=accepted.task.id or 0, verdict=accepted.task.verdict, late=accepted.result.late,
                     duplicate=accepted.duplicate, server_time=utcnow())
