"""Check tasks as a device sees them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TaskRead(BaseModel):
    """One admission to check once: the nonce must come back with the result."""

    task_id: int
    campaign_id: int
    nonce: str = Field(description="Server-issued one-time value, bound to the result")
    admission_id: int
    insured_person_id: int
    bed_id: int
    bed_label: str
    ward_id: int
    deadline_at: datetime
    issued_at: datetime


class TaskBatch(BaseModel):
    server_time: datetime
    tasks: list[TaskRead]


class AdhocTaskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bed_id: int
