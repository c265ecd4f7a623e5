"""Appeals a hospital files against a flag, with their attachments (kept in the database, never on a path
built from a user's file name)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from server.tables_base import bytes_field, utc_field


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
