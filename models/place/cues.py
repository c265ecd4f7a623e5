"""The device's place cues against the ward's: Wi-Fi networks in range and a location fix.

Each is reported with its value and never decides alone: BSSIDs can be spoofed by a rooted tablet and a
ward's access points change; GPS is weak indoors. They sit beside the scene match for the reviewer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_000.0


@dataclass(frozen=True)
class WifiCue:
    seen: int        # networks the device reported
    known: int       # of those, networks in the ward's fingerprint
    enrolled: int    # networks in the ward's fingerprint

    @property
    def overlap(self) -> float | None:
        """Share of the reported networks that are the ward's; None when there is nothing to compare."""
        return self.known / self.seen if self.seen and self.enrolled else None


def wifi_cue(seen: Iterable[str], enrolled: Iterable[str]) -> WifiCue:
    reported, ward = set(seen), set(enrolled)
    return WifiCue(len(reported), len(reported & ward), len(ward))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def outside_geofence(distance: float, accuracy_m: float, radius_m: float) -> bool:
    """Outside only when even the fix's error circle cannot reach the fence."""
    return distance - accuracy_m > radius_m
