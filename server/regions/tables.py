from __future__ import annotations

from enum import StrEnum

from sqlmodel import Field, SQLModel


class RegionLevel(StrEnum):
    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


class Region(SQLModel, table=True):
    __tablename__ = "region"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=120)
    level: RegionLevel
    parent_id: int | None = Field(default=None, foreign_key="region.id", index=True)
