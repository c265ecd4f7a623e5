"""Edge settings: one pydantic-settings object (prefix BEDCHECK_EDGE_), built by the CLI and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class EdgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEDCHECK_EDGE_", extra="forbid")

    state_dir: Path = Field(default=Path("var/edge"), description="Credential, outbox and roster of this device")
    server_url: str = Field(default="", description="Overrides the URL saved at pairing")
    device_name: str = Field(default="", max_length=120)

    # --- capture ---------------------------------------------------------------------------------
    burst_frames: int = Field(default=8, ge=1, le=60, description="Frames per capture burst")
    burst_stride: int = Field(default=3, ge=1, le=60,
                              description="Keep every n-th frame of a stream or video: spreads a burst "
                              "over ~1 s so a blink can show")
    # 960: a face at the bed stays well above the engine's 50 px minimum, and a 1080p bed check drops from
    # ~2.0 s to ~1.8 s of CPU on one core (scripts/bench_edge.py).
    frame_max_side_px: int = Field(default=960, ge=320, le=4096,
                                   description="Captured frames with a longer side are scaled down first")
    encode_best: int = Field(default=3, ge=1, le=10, description="Sharpest frames encoded and fused per burst")
    bed_sources: dict[str, str] = Field(
        default_factory=dict,
        description="Fixed bed cameras: bed label -> source (camera index, URL, video file, image folder). "
        "Beds listed here are checked automatically when a task arrives; others wait for the nurse.")
    tablet_source: str = Field(default="0", description="Source the nurse's screen captures from")

    # --- place cues (实地) -----------------------------------------------------------------------
    wifi_scan: bool = Field(default=True, description="Report the Wi-Fi networks in range (nmcli, where present)")
    location: str = Field(default="", description="A fixed location fix 'lat,lon[,accuracy_m]' for devices whose "
                          "platform has no GPS API (else no location is reported)")

    # --- network ---------------------------------------------------------------------------------
    http_timeout_s: float = Field(default=10.0, gt=0.0, le=120.0)
    long_poll_s: float = Field(default=20.0, ge=0.0, le=120.0, description="wait_s of the task long-poll")
    poll_min_interval_s: float = Field(
        default=3.0, ge=0.0, le=60.0,
        description="Pause between polls that bring nothing new: the server answers a long-poll at once while "
        "any task is pending, including those waiting for the nurse")
    heartbeat_interval_s: float = Field(default=30.0, gt=0.0)
    roster_refresh_s: float = Field(default=300.0, gt=0.0, description="How often roster and embeddings refresh")
    sync_interval_s: float = Field(default=2.0, gt=0.0, description="Outbox sweep interval when idle")
    retry_attempts: int = Field(default=6, ge=1, le=100, description="Tries per upload within one sweep")
    retry_max_wait_s: float = Field(default=30.0, gt=0.0, description="Cap of the exponential backoff")
    offline_wait_s: float = Field(default=5.0, gt=0.0, description="Pause after the server could not be reached")

    # --- nurse screen ----------------------------------------------------------------------------
    screen_enabled: bool = Field(default=True)
    screen_host: str = Field(default="127.0.0.1", description="Loopback only: the page has no sign-in")
    screen_port: int = Field(default=8765, ge=0, le=65535)

    @field_validator("location")
    @classmethod
    def _lat_lon(cls, value: str) -> str:
        if value.strip():
            parts = value.split(",")
            try:
                numbers = [float(p) for p in parts]
            except ValueError as e:
                raise ValueError("expected 'lat,lon[,accuracy_m]' in degrees and metres") from e
            if len(numbers) not in (2, 3) or not (-90 <= numbers[0] <= 90 and -180 <= numbers[1] <= 180):
                raise ValueError("expected 'lat,lon[,accuracy_m]' in degrees and metres")
        return value

    @property
    def credentials_path(self) -> Path:
        return self.state_dir / "credentials.json"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite3"
