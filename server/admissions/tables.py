from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from models.verdicts import ExemptionReason
from server.tables_base import utc_field


class Admission(SQLModel, table=True):
    __tablename__ = "admission"
    __table_args__ = (UniqueConstraint("hospital_id", "his_admission_no"),)

    id: int | None = Field(default=None, primary_key=True)
    insured_person_id: int = Field(foreign_key="insured_person.id", index=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    bed_id: int = Field(foreign_key="bed.id", index=True)
    his_admission_no: str = Field(max_length=60)
    admitted_at: datetime = utc_field()
    discharged_at: datetime | None = utc_field(nullable=True, index=True)


class Exemption(SQLModel, table=True):
    __tablename__ = "exemption"

    id: int | None = Field(default=None, primary_key=True)
    admission_id: int = Field(foreign_key="admission.id", index=True)
    reason: ExemptionReason
    note: str = Field(default="", max_length=500)
    starts_at: datetime = utc_field()
    ends_at: datetime | None = utc_field(nullable=True)
    created_by: str = Field(max_length=80)
    created_at: datetime = utc_field(now=True)
