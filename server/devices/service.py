"""Device pairing, credentials, heartbeats and per-device rate limits."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from models.errors import (
    ClockImplausible,
    DeviceRevoked,
    InvalidCredential,
    NotFound,
    PairingCodeInvalid,
    RateLimited,
)
from models.faces.engines import device_engine
from models.wire.base import MAX_CLOCK_OFFSET_MS
from server.accounts.tables import Role, UserAccount
from server.audit import service as audit
from server.db import utcnow
from server.devices.tables import Device, PairingCode
from server.hospitals.tables import Ward
from server.places.service import enroll_wifi


def hospital_devices_only(stmt: Any, user: UserAccount) -> Any:
    """Hospital staff never see a bureau inspector's device (it would announce an on-site check)."""
    if user.role == Role.HOSPITAL_STAFF:
        return stmt.where(Device.kind != "inspector")
    return stmt


def clock_offset_ms(now: datetime, device_time: datetime) -> int:
    """server time - device time, or ClockImplausible for a clock further off than the column (and sense) holds."""
    offset_ms = int((now - device_time).total_seconds() * 1000)
    if abs(offset_ms) > MAX_CLOCK_OFFSET_MS:
        raise ClockImplausible("the device clock is more than 24 days off the server's; set the device's clock",
                               offset_ms=offset_ms, max_abs_ms=MAX_CLOCK_OFFSET_MS)
    return offset_ms


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create_pairing_code(db: Session, *, ward_id: int, ttl_s: int, actor: str) -> str:
    """Issues a one-time pairing code for a ward; only its hash is stored."""
    ward = db.get(Ward, ward_id)
    if ward is None:
        raise NotFound("ward not found")
    code = secrets.token_hex(5).upper()
    db.add(PairingCode(code_hash=_sha256(code), hospital_id=ward.hospital_id, ward_id=ward_id,
                       expires_at=utcnow() + timedelta(seconds=ttl_s), created_by=actor))
    audit.record(db, actor=actor, action="pairing_code.created", object_type="ward", object_id=ward_id, data={})
    db.commit()
    return code


def checked_engine(tag: str, *, allow_synthetic: bool) -> str:
    """A device's reported engine tag if it is a known engine's ("" = not reported); UnknownEngine otherwise."""
    if tag:
        device_engine(tag, allow_synthetic=allow_synthetic)
    return tag


def report_engine(db: Session, *, device: Device, tag: str, allow_synthetic: bool) -> None:
    """Records the engine a device now embeds with (audited when it changes); adds, does not commit."""
    tag = checked_engine(tag, allow_synthetic=allow_synthetic)
    if tag and tag != device.engine_version:
        audit.record(db, actor=f"device:{device.id}", action="device.engine_changed", object_type="device",
                     object_id=device.id, data={"from": device.engine_version, "to": tag})
        device.engine_version = tag


def pair_device(db: Session, *, code: str, name: str, engine_version: str = "", allow_synthetic: bool = False,
                wifi_bssids: list[str] | None = None) -> tuple[Device, str]:
    """Turns a valid unused code into a device and its token (shown once); the Wi-Fi networks it sees in
    the ward join the ward's fingerprint."""
    engine_version = checked_engine(engine_version, allow_synthetic=allow_synthetic)
    pairing = db.exec(select(PairingCode).where(PairingCode.code_hash == _sha256(code.strip().upper()))).first()
    if pairing is None or pairing.used_at is not None or pairing.expires_at < utcnow():
        raise PairingCodeInvalid()
    token = secrets.token_urlsafe(32)
    device = Device(hospital_id=pairing.hospital_id, ward_id=pairing.ward_id, name=name,
                    token_hash=_sha256(token), last_seen_at=utcnow(), engine_version=engine_version)
    pairing.used_at = utcnow()
    db.add(device)
    db.flush()
    audit.record(db, actor=f"device:{device.id}", action="device.paired", object_type="device",
                 object_id=device.id, data={"ward_id": device.ward_id, "engine_version": engine_version})
    if wifi_bssids:
        enroll_wifi(db, ward_id=device.ward_id, bssids=wifi_bssids, actor=f"device:{device.id}")
    db.commit()
    return device, token


def authenticate(db: Session, token: str) -> Device:
    device = db.exec(select(Device).where(Device.token_hash == _sha256(token))).first()
    if device is None:
        raise InvalidCredential("unknown device credential")
    if device.revoked_at is not None:
        raise DeviceRevoked()
    return device


def revoke(db: Session, *, device_id: int, actor: str) -> Device:
    """Revokes a device: its token stops working at once."""
    device = db.get(Device, device_id)
    if device is None:
        raise NotFound("device not found")
    device.revoked_at = utcnow()
    audit.record(db, actor=actor, action="device.revoked", object_type="device", object_id=device_id, data={})
    db.commit()
    return device


class RateLimiter:
    """Token bucket per device, in process memory: each server process limits what it serves."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, device_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(device_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[device_id] = (tokens, now)
                raise RateLimited(retry_after_s=round((1.0 - tokens) / self.rate, 2))
            self._buckets[device_id] = (tokens - 1.0, now)
