from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from models.verdicts import Verdict
from server.tables_base import json_field, utc_field


class CampaignKind(StrEnum):
    SPOT_CHECK = "spot_check"
    ROLL_CALL = "roll_call"
    ADHOC = "adhoc"


class CampaignStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    kind: CampaignKind
    scope: dict[str, Any] = json_field()
    created_by: str = Field(max_length=80)
    created_at: datetime = utc_field(now=True)
    deadline_at: datetime = utc_field()
    completed_at: datetime | None = utc_field(nullable=True)
    status: CampaignStatus = Field(default=CampaignStatus.RUNNING, index=True)
    task_count: int = 0
    # An inspector's on-site check (移动稽查): its tasks go to that inspector's device only, never to the ward's.
    inspector_device_id: int | None = Field(default=None, foreign_key="device.id")


class CheckTask(SQLModel, table=True):
    __tablename__ = "check_task"
    __table_args__ = (Index("ix_check_task_campaign_verdict", "campaign_id", "verdict"),
                      Index("ix_check_task_ward_result", "ward_id", "result_id"),
                      # the period report: tasks of a day, and whether an admission was checked in a period
                      Index("ix_check_task_issued_hospital", "issued_at", "hospital_id", "verdict"),
                      Index("ix_check_task_admission_issued", "admission_id", "issued_at"))

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    admission_id: int = Field(foreign_key="admission.id", index=True)
    insured_person_id: int = Field(foreign_key="insured_person.id", index=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    bed_id: int = Field(foreign_key="bed.id")
    nonce: str = Field(unique=True, max_length=64)
    issued_at: datetime = utc_field(now=True)
    deadline_at: datetime = utc_field(index=True)
    # When a device of the ward first received the task: past the deadline without an answer, a delivered
    # task means the device looked and found nobody (absent); an undelivered one means it was offline.
    delivered_at: datetime | None = utc_field(nullable=True)
    verdict: Verdict = Field(default=Verdict.PENDING, index=True)
    verdict_at: datetime | None = utc_field(nullable=True)
    late: bool = False
    result_id: int | None = None  # no FK: check_result already points here; a cycle would break SQLite batch
    # The liveness challenge drawn for this task (models.faces.liveness.actions), sent with the nonce.
    challenge: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]"))
