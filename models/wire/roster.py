"""The ward roster a device keeps locally: beds, who is admitted, their enrolled embeddings."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.wire.base import WireModel


class BedRoster(WireModel):
    bed_id: int
    bed_label: str
    admission_id: int | None = None
    insured_person_id: int | None = None
    # Masked for the nurse's screen (e.g. "张*"); the full name never leaves the server.
    display_name: str = ""
    exemption: str | None = None
    embeddings: list[list[float]] = Field(default_factory=list, description="Enrolled 128-d embeddings")


class WardRoster(WireModel):
    hospital_id: int
    ward_id: int
    ward_name: str
    engine_version: str = Field(default="", description="The engine of every embedding in this roster")
    server_time: datetime
    beds: list[BedRoster]
