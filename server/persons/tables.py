from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from server.tables_base import bytes_field, utc_field


class InsuranceStatus(StrEnum):
    ACTIVE = "active"        # 参保缴费中
    SUSPENDED = "suspended"  # 暂停（欠费、待遇中止）
    ENDED = "ended"          # 终止（转出、死亡、注销）


class InsuredPerson(SQLModel, table=True):
    __tablename__ = "insured_person"

    id: int | None = Field(default=None, primary_key=True)
    insurance_number: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=120)
    created_at: datetime = utc_field(now=True)
    # The registry's record of the person's insurance (医保资格); None: the registry does not know the person.
    insurance_status: InsuranceStatus | None = None
    insurance_type: str = Field(default="", max_length=40)  # e.g. 职工医保, 城乡居民医保, as the HIS names it
    insured_from: date | None = None
    insured_until: date | None = None  # last day covered; None: open-ended


class StaffMember(SQLModel, table=True):
    __tablename__ = "staff_member"

    id: int | None = Field(default=None, primary_key=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    staff_number: str = Field(max_length=40)
    name: str = Field(max_length=120)


class FaceEmbedding(SQLModel, table=True):
    """One enrolled face: 128 float32 (little-endian) of one engine, a small thumbnail for reviewers and the
    face chip (the 256 px crop the engine found the face in), kept to re-embed with another engine.

    `engine reencode` adds a row per chip and engine (`reencoded_from_id` = the row whose chip it read); the
    rows of every engine stay active, each engine reads only its own (`engine_version`)."""

    __tablename__ = "face_embedding"

    id: int | None = Field(default=None, primary_key=True)
    insured_person_id: int | None = Field(default=None, foreign_key="insured_person.id", index=True)
    staff_member_id: int | None = Field(default=None, foreign_key="staff_member.id", index=True)
    vector: bytes = bytes_field(nullable=False)
    source: str = Field(default="", max_length=80)
    engine_version: str = Field(default="", max_length=80, index=True)
    photo_sha256: str = Field(default="", max_length=64, index=True)
    thumbnail_jpeg: bytes | None = bytes_field()
    chip_jpeg: bytes | None = bytes_field()
    reencoded_from_id: int | None = Field(default=None, foreign_key="face_embedding.id", index=True)
    is_active: bool = True
    created_at: datetime = utc_field(now=True)
