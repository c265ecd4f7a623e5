"""Device pairing and presence (see models/wire) and device administration. Checks: server/checks/routes.py."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlmodel import col, select

from models.wire import HeartbeatRequest, HeartbeatResponse, PairRequest, PairResponse
from server.accounts.deps import SUPERVISORS, CurrentUser
from server.db import Db, utcnow
from server.devices import service
from server.devices.deps import CurrentDevice
from server.devices.service import hospital_devices_only
from server.devices.tables import Device

pairing_router = APIRouter(prefix="/api/v1/device", tags=["device"])
device_router = APIRouter(prefix="/api/v1/device", tags=["device"])
admin_router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@pairing_router.post("/pair", response_model=PairResponse)
def pair(body: PairRequest, db: Db, request: Request) -> PairResponse:
    device, token = service.pair_device(db, code=body.code, name=body.name, engine_version=body.engine_version,
                                        allow_synthetic=request.app.state.settings.accepts_synthetic_embeddings,
                                        wifi_bssids=body.place.wifi_bssids if body.place else [])
    return PairResponse(device_id=device.id or 0, token=token, hospital_id=device.hospital_id,
                        ward_id=device.ward_id, server_time=utcnow())


@device_router.post("/heartbeat", response_model=HeartbeatResponse)
def heartbeat(body: HeartbeatRequest, device: CurrentDevice, db: Db, request: Request) -> HeartbeatResponse:
    now = utcnow()
    device.clock_offset_ms = service.clock_offset_ms(now, body.device_time)
    device.outbox_pending, device.last_seen_at = body.outbox_pending, now
    service.report_engine(db, device=device, tag=body.engine_version,
                          allow_synthetic=request.app.state.settings.accepts_synthetic_embeddings)
    db.add(device)
    db.commit()
    return HeartbeatResponse(server_time=now, device_id=device.id or 0)


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
    engine_version: str = ""  # the face engine the device last reported ("" = not yet: the server's own)


@admin_router.post("/pairing-codes", response_model=PairingCodeRead)
def new_pairing_code(body: PairingCodeCreate, user: CurrentUser, db: Db, request: Request) -> PairingCodeRead:
    SUPERVISORS(user)
    ttl = request.app.state.settings.pairing_code_ttl_s
    code = service.create_pairing_code(db, ward_id=body.ward_id, ttl_s=ttl, actor=f"user:{user.id}")
    return PairingCodeRead(code=code, ward_id=body.ward_id, expires_in_s=ttl)


@admin_router.get("", response_model=list[DeviceRead])
def list_devices(user: CurrentUser, db: Db) -> list[DeviceRead]:
    from server.accounts.deps import scope

    rows = db.exec(hospital_devices_only(scope(select(Device), user, Device.hospital_id), user)
                   .order_by(col(Device.id)))
    return [DeviceRead(id=d.id or 0, hospital_id=d.hospital_id, ward_id=d.ward_id, name=d.name,
                       revoked=d.revoked_at is not None,
                       last_seen_at=d.last_seen_at.isoformat() if d.last_seen_at else None,
                       engine_version=d.engine_version) for d in rows]


@admin_router.post("/{device_id}/revoke", response_model=DeviceRead)
def revoke_device(device_id: int, user: CurrentUser, db: Db) -> DeviceRead:
    SUPERVISORS(user)
    d = service.revoke(db, device_id=device_id, actor=f"user:{user.id}")
    return DeviceRead(id=d.id or 0, hospital_id=d.hospital_id, ward_id=d.ward_id, name=d.name, revoked=True,
                      last_seen_at=None)
