"""Device API (see models/wire) and device administration."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from models.errors import NotFound
from models.faces import ENGINE_VERSION  # noqa: F401  (the version devices should report)
from models.wire import (
    AdhocTaskRequest,
    BatchAck,
    BatchItem,
    BedRoster,
    HeartbeatRequest,
    HeartbeatResponse,
    ItemError,
    PairRequest,
    PairResponse,
    ResultAck,
    ResultBatch,
    ResultUpload,
    TaskBatch,
    TaskRead,
    WardRoster,
)
from server.accounts.deps import SUPERVISORS, CurrentUser
from server.admissions.tables import Admission, Exemption
from server.campaigns import service as campaign_service
from server.campaigns.tables import CampaignKind, CheckTask
from server.checks import service as check_service
from server.db import Db, utcnow
from server.devices import service
from server.devices.deps import CurrentDevice
from server.devices.tables import Device
from server.hospitals.tables import Bed, Ward
from server.persons.service import enrolled_vectors
from server.persons.tables import InsuredPerson

pairing_router = APIRouter(prefix="/api/v1/device", tags=["device"])
device_router = APIRouter(prefix="/api/v1/device", tags=["device"])
admin_router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@pairing_router.post("/pair", response_model=PairResponse)
def pair(body: PairRequest, db: Db, request: Request) -> PairResponse:
    with request.app.state.write_gate:
        device, token = service.pair_device(db, code=body.code, name=body.name)
    return PairResponse(device_id=device.id or 0, token=token, hospital_id=device.hospital_id,
                        ward_id=device.ward_id, server_time=utcnow())


@device_router.post("/heartbeat", response_model=HeartbeatResponse)
def heartbeat(body: HeartbeatRequest, device: CurrentDevice, db: Db, request: Request) -> HeartbeatResponse:
    now = utcnow()
    device.clock_offset_ms = int((now - body.device_time).total_seconds() * 1000)
    device.outbox_pending, device.last_seen_at = body.outbox_pending, now
    db.add(device)
    with request.app.state.write_gate:
        db.commit()
    return HeartbeatResponse(server_time=now, device_id=device.id or 0)


def _task_read(task: CheckTask, bed_labels: dict[int, str]) -> TaskRead:
    return TaskRead(task_id=task.id or 0, campaign_id=task.campaign_id, nonce=task.nonce,
                    admission_id=task.admission_id, insured_person_id=task.insured_person_id, bed_id=task.bed_id,
                    bed_label=bed_labels.get(task.bed_id, ""), ward_id=task.ward_id, deadline_at=task.deadline_at,
                    issued_at=task.issued_at)


def _pending(engine: object, ward_id: int, write_gate: object) -> TaskBatch:
    with Session(engine, expire_on_commit=False) as db:  # type: ignore[arg-type]
        tasks = campaign_service.pending_tasks_for_ward(db, ward_id=ward_id)
        fresh = [t.id or 0 for t in tasks if t.delivered_at is None]
        if fresh:
            with write_gate:  # type: ignore[attr-defined]
                campaign_service.mark_delivered(db, task_ids=fresh)
        labels = dict(db.exec(select(Bed.id, Bed.label).where(col(Bed.id).in_({t.bed_id for t in tasks}))).all())
        return TaskBatch(server_time=utcnow(), tasks=[_task_read(t, labels) for t in tasks])  # type: ignore[arg-type]


class TaskWatermark:
    """The newest task id, read at most once per poll interval per process and shared by all waiting devices.

    New work reaches a ward only as new tasks, so a waiting long-poll re-queries its ward only when this has
    moved: a province's thousands of idle devices then cost one tiny query per interval, not one each.
    """

    def __init__(self, engine: object, interval_s: float) -> None:
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
        with Session(self.engine) as db:  # type: ignore[arg-type]
            return int(db.exec(select(func.max(CheckTask.id))).one() or 0)


@device_router.get("/tasks", response_model=TaskBatch)
async def tasks(request: Request, device: CurrentDevice, wait_s: float = Query(default=0.0, ge=0.0, le=120.0)):
    """Long-poll: answers at once when tasks are pending, else waits for new tasks until `wait_s`.

    Waiting watches the database (not an in-process event), so any server process answers for any campaign.
    """
    state = request.app.state
    deadline = time.monotonic() + min(wait_s, state.settings.long_poll_max_s)
    if not hasattr(state, "task_watermark"):
        state.task_watermark = TaskWatermark(state.engine, state.settings.long_poll_interval_s)
    seen = await state.task_watermark.current()
    batch = await run_in_threadpool(_pending, state.engine, device.ward_id, state.write_gate)
    while not batch.tasks and time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(state.settings.long_poll_interval_s)
        latest = await state.task_watermark.current()
        if latest != seen:
            seen = latest
            batch = await run_in_threadpool(_pending, state.engine, device.ward_id, state.write_gate)
    return batch if batch.tasks else TaskBatch(server_time=utcnow(), tasks=[])


@device_router.post("/tasks/adhoc", response_model=TaskRead)
def adhoc_task(body: AdhocTaskRequest, device: CurrentDevice, db: Db, request: Request) -> TaskRead:
    """A nurse checks one bed now: a one-task campaign for the bed's current admission."""
    bed = db.get(Bed, body.bed_id)
    if bed is None or bed.ward_id != device.ward_id:
        raise NotFound("bed not found in this device's ward")
    admission = db.exec(select(Admission).where(Admission.bed_id == bed.id,
                                                col(Admission.discharged_at).is_(None))).first()
    if admission is None:
        raise NotFound("nobody is admitted to this bed")
    with request.app.state.write_gate:
        campaign = campaign_service.create_campaign(
            db, hospital_ids=[device.hospital_id], deadline_s=request.app.state.settings.default_deadline_s,
            actor=f"device:{device.id}", kind=CampaignKind.ADHOC, admission_ids=[admission.id or 0])
    task = db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id)).one()
    return _task_read(task, {bed.id or 0: bed.label})


@device_router.get("/roster", response_model=WardRoster)
def roster(device: CurrentDevice, db: Db) -> WardRoster:
    """The device's own ward: beds, current admissions, masked names and enrolled embeddings, nothing else."""
    ward = db.get(Ward, device.ward_id)
    assert ward is not None
    beds = list(db.exec(select(Bed).where(Bed.ward_id == ward.id).order_by(col(Bed.label))))
    admissions = {a.bed_id: a for a in db.exec(select(Admission).where(
        Admission.ward_id == ward.id, col(Admission.discharged_at).is_(None)))}
    people = {p.id: p for p in db.exec(select(InsuredPerson).where(
        col(InsuredPerson.id).in_([a.insured_person_id for a in admissions.values()])))}
    vectors = enrolled_vectors(db, [a.insured_person_id for a in admissions.values()])
    now = utcnow()
    exempt = {e.admission_id: e.reason.value for e in db.exec(select(Exemption).where(
        col(Exemption.admission_id).in_([a.id for a in admissions.values()]), Exemption.starts_at <= now))
        if e.ends_at is None or e.ends_at > now}
    out = []
    for bed in beds:
        adm = admissions.get(bed.id or 0)
        person = people.get(adm.insured_person_id) if adm else None
        out.append(BedRoster(
            bed_id=bed.id or 0, bed_label=bed.label, admission_id=adm.id if adm else None,
            insured_person_id=adm.insured_person_id if adm else None,
            display_name=(person.name[:1] + "*" * max(len(person.name) - 1, 1)) if person else "",
            exemption=exempt.get(adm.id) if adm else None,
            embeddings=vectors[adm.insured_person_id].tolist() if adm and adm.insured_person_id in vectors else []))
    return WardRoster(hospital_id=device.hospital_id, ward_id=ward.id or 0, ward_name=ward.name,
                      server_time=now, beds=out)


@device_router.post("/results", response_model=ResultAck)
def upload_result(body: ResultUpload, device: CurrentDevice, db: Db, request: Request) -> ResultAck:
    with request.app.state.write_gate:
        accepted = check_service.submit_result(
            db, device=device, upload=body, threshold=request.app.state.engine_settings.match_threshold,
            image_limits=request.app.state.engine_settings)
    return _ack(accepted)


@device_router.post("/results/batch", response_model=BatchAck)
def upload_results(body: ResultBatch, device: CurrentDevice, db: Db, request: Request) -> BatchAck:
    with request.app.state.write_gate:
        outcomes = check_service.submit_results(
            db, device=device, uploads=body.results, threshold=request.app.state.engine_settings.match_threshold,
            image_limits=request.app.state.engine_settings)
    items = [
        BatchItem(idempotency_key=upload.idempotency_key, ack=_ack(outcome))
        if isinstance(outcome, check_service.Accepted) else
        BatchItem(idempotency_key=upload.idempotency_key,
                  error=ItemError(code=outcome.code.value, message=outcome.message, http_status=outcome.http_status))
        for upload, outcome in zip(body.results, outcomes, strict=True)
    ]
    return BatchAck(items=items, server_time=utcnow())


def _ack(accepted: check_service.Accepted) -> ResultAck:
    return ResultAck(task_id=accepted.task.id or 0, verdict=accepted.task.verdict, late=accepted.result.late,
                     duplicate=accepted.duplicate, server_time=utcnow())


class PairingCodeCreate(BaseModel):
    ward_id: int


class PairingCodeRead(BaseModel):
    code: str
    ward_id: int
    expires_in_s: int


class DeviceRead(BaseModel):
    id: int
    hospital_id: int
    ward_id: int
    name: str
    revoked: bool
    last_seen_at: str | None


@admin_router.post("/pairing-codes", response_model=PairingCodeRead)
def new_pairing_code(body: PairingCodeCreate, user: CurrentUser, db: Db, request: Request) -> PairingCodeRead:
    SUPERVISORS(user)
    ttl = request.app.state.settings.pairing_code_ttl_s
    with request.app.state.write_gate:
        code = service.create_pairing_code(db, ward_id=body.ward_id, ttl_s=ttl, actor=f"user:{user.id}")
    return PairingCodeRead(code=code, ward_id=body.ward_id, expires_in_s=ttl)


@admin_router.get("", response_model=list[DeviceRead])
def list_devices(user: CurrentUser, db: Db) -> list[DeviceRead]:
    from server.accounts.deps import scope

    rows = db.exec(scope(select(Device), user, Device.hospital_id).order_by(col(Device.id)))
    return [DeviceRead(id=d.id or 0, hospital_id=d.hospital_id, ward_id=d.ward_id, name=d.name,
                       revoked=d.revoked_at is not None,
                       last_seen_at=d.last_seen_at.isoformat() if d.last_seen_at else None) for d in rows]


@admin_router.post("/{device_id}/revoke", response_model=DeviceRead)
def revoke_device(device_id: int, user: CurrentUser, db: Db, request: Request) -> DeviceRead:
    SUPERVISORS(user)
    with request.app.state.write_gate:
        d = service.revoke(db, device_id=device_id, actor=f"user:{user.id}")
    return DeviceRead(id=d.id or 0, hospital_id=d.hospital_id, ward_id=d.ward_id, name=d.name, revoked=True,
                      last_seen_at=None)
