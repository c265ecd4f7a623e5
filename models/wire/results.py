"""A device's answer to one check task."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, model_validator

from models.faces.liveness.actions import Action, CannotTakePart, LivenessMethod
from models.verdicts import CaptureOutcome, Verdict
from models.wire.base import WireModel
from models.wire.place import MAX_SCENE_B64, PlaceCues, SceneSource

EMBEDDING_DIM = 128
MAX_KEY_FRAMES = 5
# A key frame is a small JPEG (at most 480 px on its longer side, about 20-40 kB); base64 adds a third.
MAX_KEY_FRAME_B64 = 400_000


class ActionReport(WireModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    passed: bool
    time_s: float | None = Field(default=None, ge=0.0, description="Seconds after the prompt it was done")
    value: float | None = Field(default=None, description="Its strength (degrees, or a relative change)")


class LivenessReport(WireModel):
    model_config = ConfigDict(extra="forbid")

    is_live: bool
    score: float = Field(ge=0.0, le=1.0, description="Higher is more likely live")
    blink_detected: bool = False
    passive_score: float = Field(default=0.0, ge=0.0, le=1.0, description="Reported only; never decides")
    reasons: list[str] = Field(default_factory=list, max_length=20)
    method: LivenessMethod = Field(default=LivenessMethod.NONE, description="How liveness was judged")
    challenge: list[Action] = Field(default_factory=list, max_length=6, description="The task's actions judged")
    actions: list[ActionReport] = Field(default_factory=list, max_length=6)
    planarity: str | None = Field(default=None, max_length=20, description="3-D test: 3d | planar | not_measured")
    depth: float | None = Field(default=None, description="3-D test cue: nose depth from the homography residual")
    residual: float | None = Field(default=None, ge=0.0, description="Median nose-tip homography residual")
    motion: float | None = Field(default=None, ge=0.0, description="Bed cameras: strongest sign of life")
    cannot_take_part: CannotTakePart | None = Field(default=None, description="Why the patient cannot take part")


class KeyFrame(WireModel):
    """One frame of the challenge (the neutral face, then one per action), checked like the crop at upload."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field(min_length=1, max_length=20, description="neutral | motion | an action name")
    time_s: float = Field(ge=0.0, le=600.0)
    jpeg_b64: str = Field(min_length=4, max_length=MAX_KEY_FRAME_B64)
    sha256: str = Field(min_length=64, max_length=64)


class ResultUpload(WireModel):
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
    key_frames: list[KeyFrame] = Field(default_factory=list, max_length=MAX_KEY_FRAMES,
                                       description="Liveness evidence the server re-checks")
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


class ResultAck(WireModel):
    task_id: int
    verdict: Verdict
    late: bool = False
    duplicate: bool = Field(default=False, description="True when this key was already accepted")
    server_time: datetime


MAX_BATCH = 100


class ResultBatch(WireModel):
    """Several outbox entries in one request: each is accepted or refused on its own."""

    model_config = ConfigDict(extra="forbid")

    results: list[ResultUpload] = Field(min_length=1, max_length=MAX_BATCH)


class ItemError(WireModel):
    code: str
    message: str
    http_status: int = Field(description="What the single-result endpoint would have answered")


class BatchItem(WireModel):
    idempotency_key: str
    ack: ResultAck | None = None
    error: ItemError | None = Field(default=None, description="Final for this result: do not resend it")


class BatchAck(WireModel):
    items: list[BatchItem] = Field(description="One per uploaded result, in the same order")
    server_time: datetime
