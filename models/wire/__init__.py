"""Pydantic schemas that cross HTTP between devices and the server.

Device API (all under `/api/v1/device`, `Authorization: Bearer <device token>` except pairing):

    POST /api/v1/device/pair        PairRequest      -> PairResponse       (one-time code, no token)
    POST /api/v1/device/heartbeat   HeartbeatRequest -> HeartbeatResponse  (carries server time)
    GET  /api/v1/device/tasks?wait_s=N               -> TaskBatch          (long-poll: returns at once
                                                       when tasks are pending, else after at most N s)
    POST /api/v1/device/tasks/adhoc AdhocTaskRequest -> TaskRead           (a nurse checks a bed now)
    GET  /api/v1/device/roster                       -> WardRoster         (own ward only, with embeddings)
    POST /api/v1/device/results     ResultUpload     -> ResultAck          (idempotent on idempotency_key)
    POST /api/v1/device/results/batch ResultBatch    -> BatchAck           (up to 100; each item on its own)
    POST /api/v1/device/beds/{bed_id}/references ReferenceUpload -> ReferenceRead (own ward's beds only)

Errors answer `{"code", "message", "details"}` with the status of `models.errors`.
"""

from models.wire.devices import HeartbeatRequest, HeartbeatResponse, PairRequest, PairResponse
from models.wire.place import GeoFix, PlaceCues, ReferenceRead, ReferenceStatus, ReferenceUpload, SceneSource
from models.wire.results import (
    MAX_BATCH,
    ActionReport,
    BatchAck,
    BatchItem,
    CaptureSession,
    FaceBox,
    ItemError,
    KeyFrame,
    LivenessReport,
    ResultAck,
    ResultBatch,
    ResultUpload,
    SessionFrame,
)
from models.wire.roster import BedRoster, WardRoster
from models.wire.tasks import AdhocTaskRequest, TaskBatch, TaskRead

API_PREFIX = "/api/v1"
DEVICE_PREFIX = f"{API_PREFIX}/device"

__all__ = [
    "API_PREFIX",
    "DEVICE_PREFIX",
    "MAX_BATCH",
    "ActionReport",
    "AdhocTaskRequest",
    "BatchAck",
    "BatchItem",
    "BedRoster",
    "CaptureSession",
    "FaceBox",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "GeoFix",
    "ItemError",
    "KeyFrame",
    "LivenessReport",
    "PairRequest",
    "PairResponse",
    "PlaceCues",
    "ReferenceRead",
    "ReferenceStatus",
    "ReferenceUpload",
    "ResultAck",
    "ResultBatch",
    "ResultUpload",
    "SceneSource",
    "SessionFrame",
    "TaskBatch",
    "TaskRead",
    "WardRoster",
]
