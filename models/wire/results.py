"""A device's answer to one check task."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field, field_validator, model_validator

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


# A capture session (issue 25): the frames of the challenge the server re-judges itself. Face regions of about
# 160 px (a face of ~110 px: enough for landmarks and an encoding) at q 75 are 4-8 kB; a 7-9 s challenge at a
# few frames a second, denser round each action, is 40-70 frames: 250-400 kB of base64 with crop and scene.
MAX_SESSION_FRAMES = 90
MAX_SESSION_FRAME_B64 = 40_000
MAX_SESSION_S = 120.0
# The longest gap between two frames of a session: a cut (a recording spliced in) cannot hide in a hole.
MAX_SESSION_GAP_S = 0.6


class FaceBox(WireModel):
    """A rectangle in the full frame's pixels (left and top inclusive, right and bottom exclusive)."""

    model_config = ConfigDict(extra="forbid")

    left: int = Field(ge=-16_384, le=16_384)
    top: int = Field(ge=-16_384, le=16_384)
    right: int = Field(ge=-16_384, le=16_384)
    bottom: int = Field(ge=-16_384, le=16_384)

    @model_validator(mode="after")
    def _not_empty(self) -> FaceBox:
        if self.right <= self.left or self.bottom <= self.top:
            raise ValueError("a box needs right > left and bottom > top")
        return self


class SessionFrame(WireModel):
    """One frame of the session: the face region of the full frame as a small JPEG, where it was, and when."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    time_s: float = Field(ge=0.0, le=MAX_SESSION_S, description="Capture time, seconds after the first frame")
    region: FaceBox = Field(description="The part of the full frame the JPEG shows (scaled to the JPEG's size)")
    box: FaceBox = Field(description="The face the device found, in the full frame")
    jpeg_b64: str = Field(min_length=4, max_length=MAX_SESSION_FRAME_B64)
    sha256: str = Field(min_length=64, max_length=64)


class CaptureSession(WireModel):
    """What the device filmed during the challenge; the server re-judges the whole of it.

    The crop is cut from frame `crop_frame`; the scene is the full frame at `scene_time_s`, its face blurred
    where the frames' boxes say the face was then.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    frame_width: int = Field(ge=16, le=8192)
    frame_height: int = Field(ge=16, le=8192)
    frames: list[SessionFrame] = Field(min_length=1, max_length=MAX_SESSION_FRAMES)
    prompts_s: list[float] = Field(default_factory=list, max_length=6,
                                   description="When each prompt of the challenge was shown, seconds")
    crop_frame: int = Field(ge=0, description="Index of the frame the evidence crop was cut from")
    scene_time_s: float = Field(ge=0.0, le=MAX_SESSION_S, description="When the scene frame was taken")

    @field_validator("prompts_s")
    @classmethod
    def _prompts_in_range(cls, value: list[float]) -> list[float]:
        if any(not 0.0 <= t <= MAX_SESSION_S for t in value):
            raise ValueError(f"prompt times are between 0 and {MAX_SESSION_S} s")
        if any(b < a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("prompt times are in order")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CaptureSession:
        times = [f.time_s for f in self.frames]
        if any(b <= a for a, b in zip(times, times[1:], strict=False)):
            raise ValueError("session frames are in strictly increasing time")
        if self.crop_frame >= len(self.frames):
            raise ValueError("crop_frame names no frame of the session")
        if not times[0] <= self.scene_time_s <= times[-1]:
            raise ValueError("the scene frame's time lies outside the session")
        for i, frame in enumerate(self.frames):
            r = frame.region
            if r.left < 0 or r.top < 0 or r.right > self.frame_width or r.bottom > self.frame_height:
                raise ValueError(f"frame {i}: its region lies outside the {self.frame_width}x{self.frame_height} frame")
        return self


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
    embedding: list[float] | None = Field(default=None, description="The device's own 128-d embedding of its best "
                                          "frame, if it computes one (evidence only: the server encodes the crop)")
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
                                       description="Older devices' liveness evidence (stills): a face result "
                                       "now needs its `session`")
    session: CaptureSession | None = Field(default=None, description="The capture session the server re-judges: "
                                           "required with a face result")
    # Place (实地): required by the server with every face capture, like the crop.
    scene_jpeg_b64: str | None = Field(default=None, max_length=MAX_SCENE_B64,
                                       description="Scene key frame at the bed, faces blurred (JPEG)")
    scene_source: SceneSource = Field(default=SceneSource.TABLET, description="Tablet or fixed bed camera")
    place: PlaceCues | None = Field(default=None, description="Wi-Fi networks in range, location fix")

    @model_validator(mode="after")
    def _face_fields_match_outcome(self) -> ResultUpload:
        if self.outcome in (CaptureOutcome.FACE_CAPTURED, CaptureOutcome.SPOOF):
            # The device's own embedding is optional evidence (compared with the server's encoding of the crop,
            # which alone decides): a browser at the bed reports none.
            if self.embedding is not None and len(self.embedding) != EMBEDDING_DIM:
                raise ValueError(f"an embedding has {EMBEDDING_DIM} numbers")
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
