"""The service agreement's money rules, per region (a county's agreement with its hospitals)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from server.tables_base import json_field, utc_field


class CountedDays(StrEnum):
    SINCE_LAST_VERIFIED = "since_last_verified"  # from the last verified presence to the next (or discharge)
    WHOLE_ADMISSION = "whole_admission"          # every billed day of the admission


class AgreementRule(SQLModel, table=True):
    __tablename__ = "agreement_rule"

    id: int | None = Field(default=None, primary_key=True)
    # The county (or city, province) the rule holds in; the nearest region up the tree wins.
    region_id: int = Field(foreign_key="region.id", unique=True)
    counted_days: CountedDays = CountedDays.SINCE_LAST_VERIFIED
    # Deduction = refused amount x multiple (违约金); per flag kind where the agreement says so.
    deduction_multiple: float = 1.0
    kind_multiples: dict[str, Any] = json_field()
    leave_overnight_allowed: bool = False
    night_starts: str = Field(default="22:00", max_length=5)  # local time
    night_ends: str = Field(default="06:00", max_length=5)
    updated_by: str = Field(max_length=80)
    updated_at: datetime = utc_field(now=True)
