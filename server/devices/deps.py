"""`CurrentDevice`: the paired, unrevoked device behind a bearer token, rate limited."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from models.errors import BedcheckError, NotAuthenticated
from server.audit import service as audit
from server.db import Db, gated_session, utcnow
from server.devices import service
from server.devices.tables import Device

log = logging.getLogger("bedcheck.devices")


def get_current_device(request: Request, db: Db) -> Device:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise NotAuthenticated("a device token is required")
    try:
        device = service.authenticate(db, header[7:].strip())
    except BedcheckError as e:
        _record_refusal(request, e)
        raise
    request.app.state.rate_limiter.check(device.id)
    now = utcnow()
    # Presence has seconds of resolution; writing it on every request would double the write load.
    if device.last_seen_at is None or (now - device.last_seen_at).total_seconds() > 5:
        device.last_seen_at = now
        db.add(device)
        db.commit()
    else:
        # Ends the read transaction so the pooled connection goes back now: a long-poll holds this
        # request for up to half a minute and must not hold a connection with it.
        db.commit()
    return device


def _record_refusal(request: Request, error: BedcheckError) -> None:
    log.info("device credential refused: %s", error.code.value)
    counts = request.app.state.refusals.add(error.code.value)
    if counts:
        write_refusal_summary(request.app.state.engine, request.app.state.write_gate, counts)


def write_refusal_summary(engine: Engine, gate: AbstractContextManager[object], counts: dict[str, int]) -> None:
    """One audit record for the refusals counted since the last one (under the write gate)."""
    with gated_session(engine, gate) as db:
        audit.record(db, actor="device:?", action="device.refused", object_type="request", object_id="summary",
                     data={"counts": counts, "total": sum(counts.values())})
        db.commit()


CurrentDevice = Annotated[Device, Depends(get_current_device)]
