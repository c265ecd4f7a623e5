from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.verdicts import CaptureOutcome
from server.tables_base import bytes_field, json_field, utc_field


class CheckResult(SQLModel, table=True):
    """A device's answer to one task, with the evidence needed to judge it again."""

    __tablename__ = "check_result"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="check_task.id", index=True)
    device_id: int = Field(foreign_key="device.id", index=True)
    idempotency_key: str = Field(unique=True, max_length=80)
    outcome: CaptureOutcome
    captured_at: datetime = utc_field()
    received_at: datetime = utc_field(now=True)
    clock_offset_ms: int = 0
    server_distance: float | None = None
    device_distance: float | None = None
    liveness: dict[str, Any] = json_field()
    embedding: bytes | None = bytes_field()  # as the device reported it: evidence, never the judge
    # The server's own encoding of the uploaded crop: what the verdict was decided on (server/checks/evidence).
    server_embedding: bytes | None = bytes_field()
    server_engine_version: str = Field(default="", max_length=80)  # the engine of `server_embedding`
    face_crop_jpeg: bytes | None = bytes_field()
    evidence_sha256: str | None = Field(default=None, max_length=64, index=True)
    engine_version: str = Field(default="", max_length=80)  # the engine of the device's `embedding`
    threshold: float | None = None
    # The fused probe's frames (the crop, then each key frame) with their distances to the person's template,
    # whether each was used and why not (server/checks/evidence.frame_distances): the verdict's evidence.
    face_frames: list[dict[str, Any]] = Field(default_factory=list,
                                              sa_column=Column(JSON, nullable=False, server_default="[]"))
    late: bool = False
    note: str = Field(default="", max_length=500)
    # The capture session's frames as uploaded, without their JPEGs (those are `KeyFrame` rows of role
    # "session", by position): frame size, prompt times, crop frame, scene time, each frame's time, region, box.
    session: dict[str, Any] = json_field()
    # Set by the evidence check (server/evidence) once the crop, replays and 1:N search have been looked at.
    evidence_checked_at: datetime | None = utc_field(nullable=True, index=True)
    # The evidence queue (server/evidence/queue.py): the worker judging it, until when. A worker that dies
    # mid-job leaves its claim to expire, and another worker takes the result again.
    evidence_claimed_by: str | None = Field(default=None, max_length=80)
    evidence_claimed_until: datetime | None = utc_field(nullable=True)


SESSION_ROLE = "session"


class KeyFrame(SQLModel, table=True):
    """A frame of the liveness evidence uploaded with a result: the capture session's frames (role "session", in
    order) or an older device's stills; the evidence check re-judges them."""

    __tablename__ = "key_frame"

    id: int | None = Field(default=None, primary_key=True)
    result_id: int = Field(foreign_key="check_result.id", index=True)
    position: int = 0
    role: str = Field(max_length=20)
    time_s: float = 0.0
    sha256: str = Field(max_length=64)
    # Dropped with the crop once a verified check's evidence has been looked at (privacy).
    jpeg: bytes | None = bytes_field()
