"""Check tasks as a device sees them."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from models.faces.liveness.actions import Action
from models.wire.base import WireModel


class TaskRead(WireModel):
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
    # Drawn by the server for this task and stored with it; unknown to the device until the task arrives.
    challenge: list[Action] = Field(default_factory=list, max_length=6,
                                    description="Liveness actions to do in order (image coordinates)")
    challenge_action_s: float = Field(default=6.0, ge=0.0, description="Seconds allowed for each action")


class TaskBatch(WireModel):
    server_time: datetime
    tasks: list[TaskRead]


class AdhocTaskRequest(WireModel):
    model_config = ConfigDict(extra="forbid")

    bed_id: int
