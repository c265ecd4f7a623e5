from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from server.tables_base import utc_field


class EvidenceFingerprint(SQLModel, table=True):
    """One uploaded image's hashes, kept after the image is deleted (server/evidence/fingerprints.py).

    Carries its capture's bed, person and device so later captures are compared within them without a join.
    """

    __tablename__ = "evidence_fingerprint"

    id: int | None = Field(default=None, primary_key=True)
    result_id: int = Field(foreign_key="check_result.id", index=True)
    task_id: int = Field(foreign_key="check_task.id")
    bed_id: int = Field(index=True)
    insured_person_id: int = Field(index=True)
    device_id: int = Field(index=True)
    part: str = Field(max_length=20)  # fingerprints.EvidencePart
    position: int = 0
    sha256: str = Field(max_length=64, index=True)
    phash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = utc_field(now=True, index=True)
