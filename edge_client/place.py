"""Place on the device: the scene key frame of a capture, a bed's reference frames, the place cues.

The scene is one frame of the burst with every face blurred (models/place/scene.py) before it is stored
in the outbox; the reference frame is captured the same way by `bedcheck-edge reference`. Cues are what
the platform offers without special hardware: the Wi-Fi networks in range (NetworkManager's `nmcli` on a
Linux tablet) and a location fix where one is configured. Each is best effort: a missing cue is absent,
never guessed.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess

from edge_client.config import EdgeSettings
from models.faces.decode import RGBImage
from models.faces.detect import detect_faces
from models.place.scene import scene_jpeg
from models.settings import EngineSettings
from models.wire import GeoFix, PlaceCues

log = logging.getLogger(__name__)
SCAN_TIMEOUT_S = 5.0


def scene_of(frames: list[RGBImage], engine_settings: EngineSettings) -> bytes | None:
    """The middle frame of a burst, every face found in it blurred, as a small JPEG."""
    if not frames:
        return None
    frame = frames[len(frames) // 2]
    # The thorough detector: a face missed here would leave the device unblurred.
    return scene_jpeg(frame, detect_faces(frame, engine_settings, thorough=True))


def scene_b64(frames: list[RGBImage], engine_settings: EngineSettings) -> str | None:
    scene = scene_of(frames, engine_settings)
    return base64.b64encode(scene).decode("ascii") if scene is not None else None


def place_cues(settings: EdgeSettings) -> PlaceCues | None:
    """The Wi-Fi networks in range and the configured location fix, or None when there is neither."""
    bssids = scan_wifi() if settings.wifi_scan else []
    location = _location(settings.location)
    if not bssids and location is None:
        return None
    return PlaceCues(wifi_bssids=bssids, location=location)


def scan_wifi() -> list[str]:
    """BSSIDs in range from `nmcli` (NetworkManager); empty where it is missing or fails."""
    nmcli = shutil.which("nmcli")
    if nmcli is None:
        return []
    try:
        out = subprocess.run([nmcli, "-t", "-f", "BSSID", "device", "wifi", "list"], capture_output=True,
                             text=True, timeout=SCAN_TIMEOUT_S, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        log.info("wifi scan failed: %s", type(e).__name__)
        return []
    # nmcli -t escapes the colons of a BSSID as "\:".
    found = {line.strip().replace("\\:", ":").lower() for line in out.splitlines() if line.strip()}
    return sorted(b for b in found if len(b) == 17)[:64]


def _location(spec: str) -> GeoFix | None:
    if not spec.strip():
        return None
    lat, lon, *rest = (float(p) for p in spec.split(","))  # checked by EdgeSettings
    return GeoFix(lat=lat, lon=lon, accuracy_m=rest[0] if rest else 50.0, source="network")
