from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.wire.place import ReferenceStatus, SceneSource
from server.tables_base import bytes_field, json_field, utc_field


class BedReference(SQLModel, table=True):
    """A reference frame of a bed's surroundings, captured when the bed is registered or re-arranged.

    Only the JPEG (faces blurred) is kept: its features are recomputed at each check (a few ms), so a
    province's references cost kilobytes, not the ~80 KB their descriptors would.
    """

    __tablename__ = "bed_reference"

    id: int | None = Field(default=None, primary_key=True)
    bed_id: int = Field(foreign_key="bed.id", index=True)
    ward_id: int = Field(foreign_key="ward.id", index=True)
    hospital_id: int = Field(foreign_key="hospital.id", index=True)
    source: SceneSource = SceneSource.TABLET
    scene_jpeg: bytes = bytes_field(nullable=False)
    feature_count: int = 0
    cues: dict[str, Any] = json_field()
    created_by: str = Field(max_length=80)
    created_at: datetime = utc_field(now=True)
    # In force: approved by a bureau user (a hospital's device cannot plant the room its captures match).
    is_active: bool = Field(default=True, index=True)
    status: ReferenceStatus = Field(default=ReferenceStatus.APPROVED, index=True)
    decided_by: str | None = Field(default=None, max_length=80)
    decided_at: datetime | None = utc_field(nullable=True)
    decision_note: str = Field(default="", max_length=200)


class WardFingerprint(SQLModel, table=True):
    """The Wi-Fi networks seen in a ward, enrolled when its devices pair."""

    __tablename__ = "ward_fingerprint"

    ward_id: int = Field(foreign_key="ward.id", primary_key=True)
    wifi_bssids: list[str] = json_field()
    updated_at: datetime = utc_field(now=True)


class HospitalGeofence(SQLModel, table=True):
    """A circle around a hospital's buildings."""

    __tablename__ = "hospital_geofence"

    hospital_id: int = Field(foreign_key="hospital.id", primary_key=True)
    lat: float
    lon: float
    radius_m: float = 300.0
    updated_at: datetime = utc_field(now=True)


class SceneEvidence(SQLModel, table=True):
    """A face capture's scene key frame and place cues, and what the evidence check made of them.

    Kept under the crop's retention rule: the frame is dropped with the crop once a verified check's
    evidence has passed.
    """

    __tablename__ = "scene_evidence"

    result_id: int = Field(foreign_key="check_result.id", primary_key=True)
    source: SceneSource = SceneSource.TABLET
    scene_jpeg: bytes | None = bytes_field()
    cues: dict[str, Any] = json_field()
    # Set by the evidence check: inliers with the best reference, the threshold it was judged by, which
    # reference (and so which bed) matched, and the Wi-Fi / location cues compared with the ward's.
    place_score: int | None = None
    place_threshold: int | None = None
    reference_id: int | None = Field(default=None, foreign_key="bed_reference.id")
    matched_bed_id: int | None = None
    place_details: dict[str, Any] = json_field()
    checked_at: datetime | None = utc_field(nullable=True)
