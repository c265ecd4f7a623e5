"""Pairing and heartbeat schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from models.wire.base import DeviceClock, WireModel
from models.wire.place import PlaceCues


class PairRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=64, description="One-time pairing code from an administrator")
    name: str = Field(default="", max_length=120, description="Human label, e.g. 'Ward 3 tablet A'")
    engine_version: str = Field(default="", max_length=80,
                                description="Tag of the face engine the device embeds with (models/faces/engines.py)")
    # Pairing happens in the ward: the networks in range then become the ward's Wi-Fi fingerprint.
    place: PlaceCues | None = Field(default=None, description="Wi-Fi networks in range at pairing")


class PairResponse(WireModel):
    device_id: int
    token: str = Field(description="Device credential; shown once, stored hashed on the server")
    hospital_id: int
    ward_id: int
    server_time: datetime


class HeartbeatRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    device_time: DeviceClock = Field(description="The device's clock, with its zone (years 2000 to 2099)")
    outbox_pending: int = Field(default=0, ge=0, description="Results stored on the device, not yet acked")
    software_version: str = Field(default="", max_length=40)
    engine_version: str = Field(default="", max_length=80, description="Face engine tag; empty = unchanged")


class HeartbeatResponse(WireModel):
    server_time: datetime
    device_id: int
