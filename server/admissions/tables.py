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
    # What the HIS reports the fund pays, in fen (分): per inpatient day, and/or the total so far at a time.
    fund_per_day_fen: int | None = None
    fund_total_fen: int | None = None
    fund_total_at: datetime | None = utc_field(nullable=True)


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


class Leave(SQLModel, table=True):
    """An approved leave (请假): the attending doctor and the insurance office signed it before it started."""

    __tablename__ = "admission_leave"

    id: int | None = Field(default=None, primary_key=True)
    admission_id: int = Field(foreign_key="admission.id", index=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    starts_at: datetime = utc_field()
    ends_at: datetime = utc_field(index=True)
    reason: str = Field(max_length=200)
    approved_by_doctor: str = Field(max_length=80)
    approved_by_insurance_officer: str = Field(max_length=80)
    created_by: str = Field(max_length=80)
    created_at: datetime = utc_field(now=True)
    returned_at: datetime | None = utc_field(nullable=True)
    # Set once the overdue return has been flagged, so the sweep flags it once.
    overdue_flagged_at: datetime | None = utc_field(nullable=True)
