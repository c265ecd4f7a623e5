"""Server settings: one pydantic-settings object per process, built by the CLI or `create_app`, passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "development-only-secret-change-me"


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEDCHECK_", extra="ignore")

    environment: Literal["development", "test", "production"] = Field(default="development")
    data_dir: Path = Field(default=Path("var"), description="Databases, calibration and evidence files")
    database_url: str = Field(default="", description="SQLAlchemy URL; default: SQLite in data_dir")
    secret_key: SecretStr = Field(default=SecretStr(DEV_SECRET), description="Signs user tokens and sessions")
    user_token_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    default_deadline_s: int = Field(default=20 * 60, ge=10, le=7 * 24 * 3600)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    long_poll_max_s: float = Field(default=25.0, ge=0.0, le=120.0)
    long_poll_interval_s: float = Field(default=0.5, gt=0.0, le=10.0)
    device_rate_per_s: float = Field(default=50.0, gt=0.0, description="Sustained requests per device")
    device_rate_burst: int = Field(default=200, ge=1)
    pairing_code_ttl_s: int = Field(default=24 * 3600, ge=60)
    roll_call_times: str = Field(default="08:00,20:00", description="Daily roll-call times, local HH:MM")
    timezone: str = Field(default="Asia/Shanghai", description="The bureau's time zone (IANA name): roll-call "
                          "times, console pages and exports show local time; everything is stored in UTC")
    sweep_interval_s: float = Field(default=5.0, gt=0.0, description="How often deadlines are swept")
    run_scheduler: bool = Field(default=True, description="Run roll-calls and sweeps in this process")
    keep_verified_crops: bool = Field(default=False, description="Keep face crops of verified checks (else "
                                      "dropped once the evidence check has passed)")
    # Evidence checks (server/evidence). Measured on ../shared/faces/people: re-encoding a device's JPEG crop
    # lands at most 0.152 from the embedding the device fused from its burst; two different photos of one
    # person are at least 0.294 apart; impostors are beyond the match threshold (~0.6).
    evidence_interval_s: float = Field(default=2.0, gt=0.0, description="How often new results are re-checked")
    evidence_batch: int = Field(default=500, ge=1, le=10_000)
    tamper_tolerance: float = Field(default=0.25, gt=0.0, lt=1.0,
                                    description="Max distance between the reported embedding and the crop's")
    replay_max_distance: float = Field(default=0.1, gt=0.0, lt=1.0,
                                       description="Closer than this to another check or an enrolled photo: "
                                                   "the same picture shown again")
    cross_hospital_window_h: float = Field(default=24.0, gt=0.0,
                                           description="The same face in two hospitals within this window")
    keep_full_photos: bool = Field(default=False, description="Keep full enrollment photos (else embedding and "
                                   "a 96 px thumbnail only), under data_dir/enrollment_photos")
    face_index_path: Path | None = Field(default=None, description="faiss 1:N index file; default "
                                         "data_dir/face_index.bin (rebuilt from the database when missing)")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)") from e
        return value

    @model_validator(mode="after")
    def _no_placeholder_secret_in_production(self) -> ServerSettings:
        if self.environment == "production" and self.secret_key.get_secret_value() == DEV_SECRET:
            raise ValueError("BEDCHECK_SECRET_KEY must be set to a real secret in production")
        return self

    @property
    def resolved_face_index_path(self) -> Path:
        return self.face_index_path or self.data_dir / "face_index.bin"

    @property
    def enrollment_photo_dir(self) -> Path | None:
        return self.data_dir / "enrollment_photos" if self.keep_full_photos else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bedcheck.db').resolve()}"
