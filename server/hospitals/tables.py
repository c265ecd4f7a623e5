from __future__ import annotations

from enum import StrEnum

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


class HospitalKind(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


class Hospital(SQLModel, table=True):
    __tablename__ = "hospital"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=200)
    county_id: int = Field(foreign_key="region.id", index=True)
    kind: HospitalKind = HospitalKind.PUBLIC


class Ward(SQLModel, table=True):
    __tablename__ = "ward"
    __table_args__ = (UniqueConstraint("hospital_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    code: str = Field(max_length=40)
    name: str = Field(default="", max_length=120)


class Bed(SQLModel, table=True):
    __tablename__ = "bed"
    __table_args__ = (UniqueConstraint("ward_id", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    label: str = Field(max_length=40)
