"""A device's answer to one check task."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.verdicts import CaptureOutcome, Verdict
from models.wire.place import MAX_SCENE_B64, PlaceCues, SceneSource

EMBEDDING_DIM = 128


class LivenessReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_live: bool
    score: float = Field(ge=0.0, le=1.0, description="Higher is more likely live")
    blink_detected: bool = False
    passive_score: float = Field(default=0.0, ge=0.0, le=1.0)
    reasons: list[str] = Field(default_factory=list, max_length=20)


class ResultUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=8, max_length=80, description="Same key = same result")
    task_id: int
    nonce: str = Field(min_length=8, max_length=128)
    outcome: CaptureOutcome
    # Not AwareDatetime: in a batch, a capture time without a zone must refuse that one result (422 in its
    # item), not the whole request; the server checks it (server/checks/service.py, _clock_refusal).
    captured_at: datetime = Field(description="Device clock, with its zone")
    clock_offset_ms: int = Field(default=0, description="server_time - device_time at the last sync")
    embedding: list[float] | None = Field(default=None, description="128-d embedding of the best frame")
    distance: float | None = Field(default=None, ge=0.0, description="Device's own distance to the enrolled")
    liveness: LivenessReport | None = None
    face_crop_jpeg_b64: str | None = Field(default=None, max_length=2_000_000, description="Evidence crop (JPEG or "
                                           "PNG, a face with margin): required with a face result; the server "
                                           "decides on its own encoding of it")
    evidence_sha256: str | None = Field(default=None, min_length=64, max_length=64)
    frames_used: int = Field(default=0, ge=0)
    other_faces: int = Field(default=0, ge=0, description="Faces seen besides the largest")
    engine_version: str = Field(default="", max_length=80)
    threshold: float | None = Field(default=None, gt=0.0)
    note: str = Field(default="", max_length=500, description="Nurse's remark, e.g. why the bed is empty")
    # Place (实地): required by the server with every face capture, like the crop.
    scene_jpeg_b64: str | None = Field(default=None, max_length=MAX_SCENE_B64,
                                       description="Scene key frame at the bed, faces blurred (JPEG)")
    scene_source: SceneSource = Field(default=SceneSource.TABLET, description="Tablet or fixed bed camera")
    place: PlaceCues | None = Field(default=None, description="Wi-Fi networks in range, location fix")

    @model_validator(mode="after")
    def _face_fields_match_outcome(self) -> ResultUpload:
        if self.outcome in (CaptureOutcome.FACE_CAPTURED, CaptureOutcome.SPOOF):
            if self.embedding is None or len(self.embedding) != EMBEDDING_DIM:
                raise ValueError(f"{self.outcome.value} needs a {EMBEDDING_DIM}-d embedding")
            if self.liveness is None:
                raise ValueError(f"{self.outcome.value} needs a liveness report")
        elif self.embedding is not None:
            raise ValueError(f"{self.outcome.value} carries no embedding")
        return self


class ResultAck(BaseModel):
    task_id: int
    verdict: Verdict
    late: bool = False
    duplicate: bool = Field(default=False, description="True when this key was already accepted")
    server_time: datetime


MAX_BATCH = 100


class ResultBatch(BaseModel):
    """Several outbox entries in one request: each is accepted or refused on its own."""

    model_config = ConfigDict(extra="forbid")

    results: list[ResultUpload] = Field(min_length=1, max_length=MAX_BATCH)


class ItemError(BaseModel):
    code: str
    message: str
    http_status: int = Field(description="What the single-result endpoint would have answered")


class BatchItem(BaseModel):
    idempotency_key: str
    ack: ResultAck | None = None
    error: ItemError | None = Field(default=None, description="Final for this result: do not resend it")


class BatchAck(BaseModel):
    items: list[BatchItem] = Field(description="One per uploaded result, in the same order")
    server_time: datetime
