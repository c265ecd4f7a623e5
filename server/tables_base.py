"""Column helpers shared by every domain's tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field

from server.db import UTCDateTime, utcnow


def utc_field(*, nullable: bool = False, index: bool = False, now: bool = False) -> Any:
    """An aware-UTC datetime column (`*_at`); `now` fills it at insert."""
    kwargs: dict[str, Any] = {"default_factory": utcnow} if now else {"default": None}
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kwargs)


def json_field() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


def bytes_field(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(LargeBinary, nullable=nullable))
