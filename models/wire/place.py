"""Place (实地) on the wire: the scene key frame's source, the device's place cues, bed reference frames."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from models.wire.base import WireModel

# Scene frames and references are small JPEGs (480 px, ~20-60 KB); base64 adds a third.
MAX_SCENE_B64 = 400_000
MAX_BSSIDS = 64
_BSSID = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class SceneSource(StrEnum):
    TABLET = "tablet"          # a hand-held ward tablet: its view of a bed varies a little
    BED_CAMERA = "bed_camera"  # a camera fixed at the bed: its view does not move


class ReferenceStatus(StrEnum):
    """A reference frame's standing: one taken by a hospital's device waits for a bureau user's approval."""

    PENDING = "pending"    # taken, not yet looked at: never what a capture is judged against
    APPROVED = "approved"  # a bureau user saw the frame and accepted it as the bed's surroundings
    REJECTED = "rejected"  # a bureau user refused it (another room, a blank wall, a planted picture)


class GeoFix(WireModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90.0, le=90.0)
    lon: float = Field(ge=-180.0, le=180.0)
    accuracy_m: float = Field(default=50.0, ge=0.0, le=100_000.0)
    source: Literal["gps", "network"] = "gps"


class PlaceCues(WireModel):
    """What the device can tell about where it is, without special hardware. Each is a cue, none decides."""

    model_config = ConfigDict(extra="forbid")

    wifi_bssids: list[str] = Field(default_factory=list, max_length=MAX_BSSIDS,
                                   description="BSSIDs of the Wi-Fi networks in range, aa:bb:cc:dd:ee:ff")
    location: GeoFix | None = Field(default=None, description="GPS or network location, where the platform has it")

    @field_validator("wifi_bssids")
    @classmethod
    def _normalised(cls, value: list[str]) -> list[str]:
        out = sorted({v.strip().lower().replace("-", ":") for v in value})
        bad = [v for v in out if not _BSSID.match(v)]
        if bad:
            raise ValueError(f"not a BSSID: {bad[0]!r}")
        return out


class ReferenceUpload(WireModel):
    """A reference frame of a bed's surroundings (wall, headboard, equipment), faces blurred."""

    model_config = ConfigDict(extra="forbid")

    scene_jpeg_b64: str = Field(min_length=4, max_length=MAX_SCENE_B64)
    source: SceneSource = SceneSource.TABLET
    cues: PlaceCues | None = None
    note: str = Field(default="", max_length=200)


class ReferenceRead(WireModel):
    reference_id: int
    bed_id: int
    source: SceneSource
    feature_count: int
    created_at: datetime
    status: ReferenceStatus = Field(description="pending until a bureau user approves it")
