from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from models.verdicts import FlagKind
from server.tables_base import bytes_field, json_field, utc_field


class FlagStatus(StrEnum):
    OPEN = "open"
    FIRST_REVIEWED = "first_reviewed"
    CONFIRMED = "confirmed"
    DISMISSED = "dismissed"
    APPEALED = "appealed"
    SUPERSEDED = "superseded"  # closed by the system: a late result contradicted it (the result is kept)
    RESOLVED = "resolved"      # closed by the system: what it reported ended (a 叠床 overlap discharged)


class Flag(SQLModel, table=True):
    __tablename__ = "flag"

    id: int | None = Field(default=None, primary_key=True)
    kind: FlagKind = Field(index=True)
    status: FlagStatus = Field(default=FlagStatus.OPEN, index=True)
    # None for flags about no hospital (a face enrolled under two insurance numbers): bureau staff only.
    hospital_id: int | None = Field(default=None, foreign_key="hospital.id", index=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id", index=True)
    task_id: int | None = Field(default=None, foreign_key="check_task.id", index=True)
    admission_id: int | None = Field(default=None, foreign_key="admission.id")
    insured_person_id: int | None = Field(default=None, foreign_key="insured_person.id")
    details: dict[str, Any] = json_field()
    created_at: datetime = utc_field(now=True, index=True)
    updated_at: datetime = utc_field(now=True)
    # Set at final confirmation by the region's agreement (server/funds), in fen; zero once an appeal is upheld.
    refused_fen: int | None = None
    deduction_fen: int | None = None


class Review(SQLModel, table=True):
    __tablename__ = "review"

    id: int | None = Field(default=None, primary_key=True)
    flag_id: int = Field(foreign_key="flag.id", index=True)
    from_status: FlagStatus
    to_status: FlagStatus
    reason: str = Field(max_length=500)
    actor: str = Field(max_length=80)
    created_at: datetime = utc_field(now=True)


# Appeals a hospital files against a flag, with their attachments (kept in the database, never on a path
# built from a user's file name).
class Appeal(SQLModel, table=True):
    __tablename__ = "appeal"

    id: int | None = Field(default=None, primary_key=True)
    flag_id: int = Field(foreign_key="flag.id", index=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    statement: str = Field(max_length=4000)
    created_by: str = Field(max_length=80)
    created_at: datetime = utc_field(now=True)


class AppealAttachment(SQLModel, table=True):
    __tablename__ = "appeal_attachment"

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: int = Field(foreign_key="appeal.id", index=True)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=80)
    size_bytes: int
    sha256: str = Field(max_length=64)
    content: bytes = bytes_field(nullable=False)
    created_at: datetime = utc_field(now=True)
