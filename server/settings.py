"""Server settings: one pydantic-settings object per process, built by the CLI or `create_app`, passed down."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# In the source, hence known to anyone: accepted only by the test suite and the demo (see _resolve_secrets).
DEV_SECRET = "development-only-secret-change-me"
PLACEHOLDER_ENVIRONMENTS = frozenset({"test", "demo"})


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEDCHECK_", extra="ignore")

    environment: Literal["development", "test", "demo", "production"] = Field(
        default="development", description="demo and test accept the placeholder secret and synthetic evidence")
    data_dir: Path = Field(default=Path("var"), description="Databases, calibration and evidence files")
    database_url: str = Field(default="", description="SQLAlchemy URL; default: SQLite in data_dir")
    secret_key: SecretStr | None = Field(default=None, description="Signs user tokens and sessions; default: a "
                                         "random key generated once in data_dir/secret_key (mode 0600)")
    audit_key: SecretStr | None = Field(default=None, description="Keys the audit chain (HMAC) and signs its "
                                        "checkpoints; default: generated once in data_dir/audit_key (mode 0600)")
    audit_checkpoint_path: Path | None = Field(default=None, description="Signed audit checkpoints, outside "
                                               "the database; default beside the SQLite file, or in data_dir")
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0.0, description="How often the chain's head "
                                               "is checkpointed")
    audit_checkpoint_mirror: Path | None = Field(default=None, description="A second directory (another disk, "
                                                 "a share of the bureau's) that receives every checkpoint too; "
                                                 "`audit verify` then checks both")
    audit_checkpoint_max_age_s: float = Field(default=3600.0, gt=0.0, description="Audit records older than this "
                                              "and not covered by a checkpoint fail `audit verify` (checkpoints "
                                              "stopped, or the file was rolled back)")
    # Behind a reverse proxy the client's address is in X-Forwarded-For; a header any client can write
    # decides sign-in throttling only when it comes from a proxy named here.
    trusted_proxies: str = Field(default="", max_length=2000, description="Comma-separated addresses or "
                                 "networks (CIDR) of the reverse proxies whose X-Forwarded-For/-Proto are "
                                 "believed; default none: the peer address is the client's")
    user_token_ttl_s: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    default_deadline_s: int = Field(default=20 * 60, ge=10, le=7 * 24 * 3600)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                description="Counted as the body streams, chunked or not")
    header_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0, description="Request line and headers "
                                    "must arrive within this (slow clients holding connections: slowloris)")
    body_timeout_s: float = Field(default=120.0, gt=0.0, le=3600.0, description="A request body must arrive "
                                  "within this; a ward on a slow link still sends a full batch well inside it")
    # Sign-in throttle (server/accounts/throttle.py), per account and per client address: after `delay_after`
    # failures each further attempt waits base, 2x base, 4x base... from the last failure; at `lock_after`
    # failures the key is locked for `sign_in_lock_s` (and again after every further failure). A success
    # clears its account; failures are forgotten `sign_in_forget_after_s` (an address's:
    # `sign_in_address_forget_after_s`) after the last one.
    sign_in_delay_after: int = Field(default=5, ge=1, le=1000, description="Failures of one account before "
                                     "attempts are delayed")
    sign_in_lock_after: int = Field(default=10, ge=1, le=1000, description="Failures of one account that lock it")
    sign_in_address_delay_after: int = Field(default=20, ge=1, le=10_000, description="Failures from one client "
                                             "address (any account) before its attempts are delayed")
    sign_in_address_lock_after: int = Field(default=50, ge=1, le=10_000, description="Failures from one client "
                                            "address that lock it")
    sign_in_delay_base_s: float = Field(default=1.0, gt=0.0, le=3600.0, description="The first delay; it "
                                        "doubles with each further failure")
    sign_in_lock_s: float = Field(default=15 * 60.0, gt=0.0, le=7 * 24 * 3600.0, description="How long a lock "
                                  "lasts")
    sign_in_forget_after_s: float = Field(default=24 * 3600.0, gt=0.0, description="Failures older than this "
                                          "(since the last one) are forgotten")
    sign_in_address_forget_after_s: float = Field(default=15 * 60.0, gt=0.0, description="An address's failures "
                                                  "older than this (since its last one) are forgotten: a whole "
                                                  "hospital may share one address")
    sign_in_audit_interval_s: float = Field(default=60.0, gt=0.0, description="Refused sign-ins are counted "
                                            "and written as one audit record per interval")
    long_poll_max_s: float = Field(default=25.0, ge=0.0, le=120.0)
    long_poll_interval_s: float = Field(default=0.5, gt=0.0, le=10.0)
    device_rate_per_s: float = Field(default=50.0, gt=0.0, description="Sustained requests per device")
    device_rate_burst: int = Field(default=200, ge=1)
    clock_tolerance_s: float = Field(default=300.0, ge=0.0, le=24 * 3600, description="How far captured_at may "
                                     "lie before its task or after now, beyond the device's measured offset")
    max_crop_bytes: int = Field(default=256 * 1024, ge=1024, le=4 * 1024 * 1024,
                                description="A face crop's size limit (devices send ~20 KB JPEGs)")
    max_crop_side_px: int = Field(default=512, ge=64, le=4096, description="A face crop's longer side at most "
                                  "(devices crop at EngineSettings.crop_max_side_px, 256 by default)")
    pairing_code_ttl_s: int = Field(default=24 * 3600, ge=60)
    roll_call_times: str = Field(default="08:00,20:00", description="Daily roll-call times, local HH:MM")
    timezone: str = Field(default="Asia/Shanghai", description="The bureau's time zone (IANA name): roll-call "
                          "times, console pages and exports show local time; everything is stored in UTC")
    sweep_interval_s: float = Field(default=5.0, gt=0.0, description="How often deadlines are swept")
    run_scheduler: bool = Field(default=True, description="Run roll-calls and sweeps in this process")
    keep_verified_crops: bool = Field(default=False, description="Keep face crops of verified checks (else "
                                      "dropped once the evidence check has passed)")
    # Evidence checks (server/evidence). Their distances (tamper tolerance, replay distance) are each face
    # engine's, measured for it: models/faces/engines.py.
    evidence_interval_s: float = Field(default=2.0, gt=0.0, description="How often new results are re-checked")
    evidence_batch: int = Field(default=500, ge=1, le=10_000)
    # The evidence queue (server/evidence/queue.py, `bedcheck evidence work`).
    evidence_in_server: bool = Field(default=True, description="The scheduler's leader also checks evidence "
                                     "(false where `bedcheck evidence work` processes do it)")
    evidence_lease_s: float = Field(default=120.0, gt=0.0, le=86_400.0,
                                    description="How long a worker holds the results it claimed; a worker that "
                                    "died mid-job leaves them to another after this")
    cross_hospital_window_h: float = Field(default=24.0, gt=0.0,
                                           description="The same face in two hospitals within this window")
    # Evidence used once (server/evidence/fingerprints.py): a byte copy is found however old; near-copies are
    # looked for among the same bed's, person's and device's captures of this many days (an admission's length).
    replay_window_days: float = Field(default=90.0, gt=0.0, le=3650.0,
                                      description="Earlier captures a new one's images are compared with")
    # Place (实地, server/evidence/place.py). Measured on the real-scene set (models/place/evaluation.py,
    # docs/benchmarks.md, 1,000 ORB features a frame): the same place keeps at least 30 inliers, another room
    # at most 9.
    place_min_inliers: int = Field(default=20, ge=4, le=1000,
                                   description="Inliers of the scene with a reference for the same place")
    reference_min_features: int = Field(default=300, ge=10, le=5000,
                                        description="A reference frame with fewer features (a blank wall) is "
                                                    "refused: it could not be recognised again")
    place_ward_max_references: int = Field(default=40, ge=1, le=1000,
                                           description="Other references of the ward tried when a tablet's "
                                                       "scene does not match its own bed's")
    scene_max_bytes: int = Field(default=300_000, ge=1024, le=5_000_000, description="Largest scene frame")
    scene_max_pixels: int = Field(default=1_310_720, ge=10_000, le=20_000_000,
                                  description="Largest scene frame area (1280x1024)")
    keep_full_photos: bool = Field(default=False, description="Keep full enrollment photos (else embedding and "
                                   "a 96 px thumbnail only), under data_dir/enrollment_photos")
    # Liveness evidence (server/evidence/liveness.py).
    allow_simulated_liveness: bool | None = Field(
        default=None, description="Accept results whose liveness is simulated or missing (demo and test "
        "devices without real faces). Default: only when environment is test; never in production.")
    key_frame_max_bytes: int = Field(default=200_000, ge=10_000, le=2_000_000,
                                     description="Largest key frame (JPEG) a device may upload")
    key_frame_max_side_px: int = Field(default=1024, ge=160, le=4096,
                                       description="Longest side of an uploaded key frame")
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

    # Where each secret came from, for the start-up message ("environment", "file ... (generated)", ...).
    _secret_sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _resolve_secrets(self) -> ServerSettings:
        for name in ("secret_key", "audit_key"):
            given: SecretStr | None = getattr(self, name)
            if given is not None:
                if given.get_secret_value() == DEV_SECRET and self.environment not in PLACEHOLDER_ENVIRONMENTS:
                    raise ValueError(f"BEDCHECK_{name.upper()} is the placeholder from the source code; it is "
                                     f"accepted only with BEDCHECK_ENVIRONMENT=demo or test")
                self._secret_sources[name] = "given"
                continue
            if self.environment == "test":
                setattr(self, name, SecretStr(DEV_SECRET))
                self._secret_sources[name] = "placeholder (test)"
                continue
            value, source = _secret_file(self.data_dir / name)
            setattr(self, name, SecretStr(value))
            self._secret_sources[name] = source
        return self

    @property
    def secret(self) -> str:
        assert self.secret_key is not None  # set by _resolve_secrets
        return self.secret_key.get_secret_value()

    @property
    def audit_secret(self) -> bytes:
        assert self.audit_key is not None
        return self.audit_key.get_secret_value().encode()

    @property
    def resolved_checkpoint_path(self) -> Path:
        """Beside a SQLite file, else in data_dir named after the database: one chain, one file."""
        if self.audit_checkpoint_path:
            return self.audit_checkpoint_path
        url = self.resolved_database_url
        if url.startswith("sqlite:///") and ":memory:" not in url:
            return Path(f"{url.removeprefix('sqlite:///')}.audit-checkpoints.jsonl")
        tag = hashlib.sha256(url.encode()).hexdigest()[:12]
        return self.data_dir / f"audit-checkpoints-{tag}.jsonl"

    @property
    def resolved_checkpoint_mirror(self) -> Path | None:
        """The mirror copy of the checkpoint file (same name, in the mirror directory), if one is configured."""
        return self.audit_checkpoint_mirror / self.resolved_checkpoint_path.name if self.audit_checkpoint_mirror \
            else None

    def startup_message(self) -> str:
        """Says which mode the server runs in and where its secrets come from."""
        sources = ", ".join(f"{k}: {v}" for k, v in self._secret_sources.items())
        warning = {"development": " (not for production: set BEDCHECK_ENVIRONMENT=production)",
                   "demo": " (demo: placeholder secret and synthetic evidence accepted)",
                   "test": " (test suite)"}.get(self.environment, "")
        return f"bedcheck server: environment={self.environment}{warning}; {sources}"

    @model_validator(mode="after")
    def _no_simulated_liveness_in_production(self) -> ServerSettings:
        if self.environment == "production" and self.allow_simulated_liveness:
            raise ValueError("simulated liveness cannot be allowed in production (BEDCHECK_ALLOW_SIMULATED_LIVENESS)")
        return self

    @property
    def simulated_liveness_allowed(self) -> bool:
        """Whether results without real liveness evidence pass the evidence check (demo and test only)."""
        if self.allow_simulated_liveness is None:
            return self.environment in PLACEHOLDER_ENVIRONMENTS
        return self.allow_simulated_liveness and self.environment != "production"

    @property
    def resolved_face_index_path(self) -> Path:
        return self.face_index_path or self.data_dir / "face_index.bin"

    @property
    def accepts_synthetic_embeddings(self) -> bool:
        """Synthetic embeddings (simulated devices, no real face behind them) are evidence in demo and test
        servers only: anywhere else a device tagging its results `synthetic` is refused (unknown_engine)."""
        return self.environment in PLACEHOLDER_ENVIRONMENTS

    def face_index_path_for(self, engine: str) -> Path:
        """One 1:N index per face engine (by name) beside the configured path: face_index.sface.bin."""
        base = self.resolved_face_index_path
        return base.with_name(f"{base.stem}.{engine}{base.suffix}")

    @property
    def enrollment_photo_dir(self) -> Path | None:
        return self.data_dir / "enrollment_photos" if self.keep_full_photos else None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bedcheck.db').resolve()}"


def _secret_file(path: Path) -> tuple[str, str]:
    """The secret kept in `path`, created at random (mode 0600) on first use; other processes read the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole to a private temporary file, then linked into place: a process starting at the same
        # moment either loses the link race and reads the winner's key, or never sees a half-written file.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
        finally:
            tmp.unlink()
        if created:
            return path.read_text().strip(), f"file {path} (generated)"
    if path.stat().st_mode & 0o077:
        raise ValueError(f"{path} is readable by other users; chmod 600 it")
    value = path.read_text().strip()
    if len(value) < 32:
        raise ValueError(f"{path} holds no usable secret (under 32 characters)")
    return value, f"file {path}"
