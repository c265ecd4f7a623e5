from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from server.tables_base import json_field, utc_field


class AuditRecord(SQLModel, table=True):
    """Append-only and hash-chained: each record's hash covers its fields and the previous hash."""

    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    created_at: datetime = utc_field()
    actor: str = Field(max_length=80)
    action: str = Field(max_length=80, index=True)
    object_type: str = Field(max_length=40)
    object_id: str = Field(max_length=40)
    data: dict[str, Any] = json_field()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
