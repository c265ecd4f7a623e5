"""Place routes: a device captures its beds' references; supervisors set hospital geofences."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from models.wire import ReferenceRead, ReferenceUpload
from models.wire.base import WireModel
from server.accounts.deps import REVIEWERS, SUPERVISORS, CurrentUser
from server.db import Db
from server.devices.deps import CurrentDevice
from server.places import service
from server.places.tables import BedReference

device_router = APIRouter(prefix="/api/v1/device", tags=["device"])
admin_router = APIRouter(prefix="/api/v1/places", tags=["places"])


@device_router.post("/beds/{bed_id}/references", response_model=ReferenceRead)
def add_reference(bed_id: int, body: ReferenceUpload, device: CurrentDevice, db: Db, request: Request) -> ReferenceRead:
    """A reference frame of one of the device's own ward's beds (faces blurred), refused when too plain; it waits,
    inactive, for a bureau user's approval."""
    state = request.app.state
    reference = service.add_reference(db, bed_id=bed_id, ward_id=device.ward_id, jpeg_b64=body.scene_jpeg_b64,
                                      source=body.source, cues=body.cues, actor=f"device:{device.id}",
                                      settings=state.settings, engine_settings=state.engine_settings)
    return _read(reference)


class GeofenceWrite(WireModel):  # no NaN or ±Infinity (non_finite_number), as every wire schema
    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    radius_m: float = Field(default=300.0, gt=0.0, le=50_000.0)


@admin_router.put("/hospitals/{hospital_id}/geofence", response_model=GeofenceWrite)
def put_geofence(hospital_id: int, body: GeofenceWrite, user: CurrentUser, db: Db) -> GeofenceWrite:
    SUPERVISORS(user)
    fence = service.set_geofence(db, hospital_id=hospital_id, lat=body.lat, lon=body.lon, radius_m=body.radius_m,
                                 actor=f"user:{user.id}")
    return GeofenceWrite(lat=fence.lat, lon=fence.lon, radius_m=fence.radius_m)


def _read(reference: BedReference) -> ReferenceRead:
    return ReferenceRead(reference_id=reference.id or 0, bed_id=reference.bed_id, source=reference.source,
                         feature_count=reference.feature_count, created_at=reference.created_at,
                         status=reference.status)


class ReferenceDecision(WireModel):
    approve: bool
    note: str = Field(default="", max_length=200)


@admin_router.post("/references/{reference_id}/decision", response_model=ReferenceRead)
def decide(reference_id: int, body: ReferenceDecision, user: CurrentUser, db: Db) -> ReferenceRead:
    """A bureau user approves or rejects a pending bed reference (audited)."""
    REVIEWERS(user)
    return _read(service.decide_reference(db, reference_id=reference_id, approve=body.approve,
                                          actor=f"user:{user.id}", note=body.note))
