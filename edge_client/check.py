"""One bed check: a capture burst -> liveness, best frames, local match -> a `ResultUpload` with evidence.

The device's own verdict is a preview for the nurse's screen; the server decides again with its own
threshold and enrolled embeddings (server/checks/policy.py), from the outcome sent here:
no face -> absent, bed empty -> absent, failed liveness -> spoof, live face -> verified or impersonated.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge_client.place import scene_b64
from models.faces import crop_to_jpeg
from models.faces.decode import RGBImage
from models.faces.engine import BurstResult, FaceEngine
from models.faces.match import Embeddings, match
from models.verdicts import CaptureOutcome, ExemptionReason, Verdict
from models.wire import LivenessReport, PlaceCues, ResultUpload, SceneSource, TaskRead


@dataclass(frozen=True)
class CheckRecord:
    upload: ResultUpload
    local_verdict: Verdict
    timings_ms: dict[str, float] = field(default_factory=dict)


def new_key() -> str:
    """Idempotency key, made once at capture and stored with the result: every retry sends the same one."""
    return uuid.uuid4().hex


def _base(task: TaskRead, outcome: CaptureOutcome, clock_offset_ms: int, note: str = "", *,
          engine_tag: str = "") -> dict[str, Any]:
    return {"idempotency_key": new_key(), "task_id": task.task_id, "nonce": task.nonce, "outcome": outcome,
            "captured_at": datetime.now(UTC), "clock_offset_ms": clock_offset_ms, "note": note[:500],
            "engine_version": engine_tag}


def check_frames(engine: FaceEngine, frames: list[RGBImage], task: TaskRead, enrolled: Embeddings | None,
                 *, clock_offset_ms: int = 0, encode_best: int = 3, scene_source: SceneSource = SceneSource.TABLET,
                 place: PlaceCues | None = None) -> CheckRecord:
    """Judges a burst of frames captured at the task's bed; a face result carries the scene (faces blurred)."""
    started = time.perf_counter()
    if not frames:
        upload = ResultUpload(**_base(task, CaptureOutcome.NO_FACE, clock_offset_ms, "the source gave no frames",
                                      engine_tag=engine.tag))
        return CheckRecord(upload, Verdict.ABSENT, {"analysis": 0.0})
    burst = engine.check_burst(frames, encode_best=encode_best)
    analysed = time.perf_counter()
    if burst.encoding is None:
        note = "no usable face in the burst" + (f" ({', '.join(burst.reasons)})" if burst.reasons else "")
        upload = ResultUpload(**_base(task, CaptureOutcome.NO_FACE, clock_offset_ms, note, engine_tag=engine.tag))
        return CheckRecord(upload, Verdict.ABSENT, {"analysis": (analysed - started) * 1000})
    record = _face_record(engine, burst, task, enrolled, clock_offset_ms)
    upload = record.upload.model_copy(update={"scene_jpeg_b64": scene_b64(frames, engine.settings),
                                              "scene_source": scene_source, "place": place})
    record = CheckRecord(upload, record.local_verdict)
    timings = {"analysis": (analysed - started) * 1000, "evidence": (time.perf_counter() - analysed) * 1000}
    return CheckRecord(record.upload, record.local_verdict, timings)


def _face_record(engine: FaceEngine, burst: BurstResult, task: TaskRead, enrolled: Embeddings | None,
                 clock_offset_ms: int) -> CheckRecord:
    assert burst.encoding is not None and burst.crop_rgb is not None
    live = burst.liveness
    outcome = CaptureOutcome.FACE_CAPTURED if live.is_live else CaptureOutcome.SPOOF
    threshold = engine.settings.match_threshold
    probe = Embeddings.of(engine.tag, burst.encoding)
    matched = match(enrolled, probe, threshold) if enrolled is not None and len(enrolled) else None
    if not live.is_live:
        verdict = Verdict.SPOOF
    elif matched is None:
        verdict = Verdict.UNRECOGNISED
    else:
        verdict = Verdict.VERIFIED if matched.is_match else Verdict.IMPERSONATED
    jpeg = crop_to_jpeg(burst.crop_rgb)
    quality = [r for r in burst.reasons if r not in live.reasons]
    upload = ResultUpload(
        **_base(task, outcome, clock_offset_ms, f"quality: {', '.join(quality)}" if quality else "",
                engine_tag=engine.tag),
        embedding=[float(x) for x in burst.encoding],
        distance=round(matched.distance, 6) if matched is not None else None,
        liveness=LivenessReport(is_live=live.is_live, score=_unit(live.score), blink_detected=live.blink_detected,
                                passive_score=_unit(live.passive_score), reasons=list(live.reasons)[:20]),
        face_crop_jpeg_b64=base64.b64encode(jpeg).decode("ascii"),
        evidence_sha256=hashlib.sha256(jpeg).hexdigest(),
        frames_used=burst.frames_used, other_faces=burst.other_faces, threshold=threshold)
    return CheckRecord(upload, verdict)


def bed_empty(task: TaskRead, note: str, *, clock_offset_ms: int = 0) -> CheckRecord:
    """The nurse reports nobody in the bed: the server records absent, with the nurse's words."""
    upload = ResultUpload(**_base(task, CaptureOutcome.BED_EMPTY, clock_offset_ms, note))
    return CheckRecord(upload, Verdict.ABSENT)


def patient_exempt(task: TaskRead, reason: ExemptionReason, note: str, *, clock_offset_ms: int = 0) -> CheckRecord:
    """The nurse says the patient is away for a reason (ICU, surgery, examination).

    The device API takes no exemptions (the hospital's insurance office records them on the server before
    a check): the task is answered as an empty bed whose note carries the reason, so the absent flag
    reaches a reviewer with the explanation attached.
    """
    text = f"exempt:{reason.value}" + (f" {note}" if note else "")
    return CheckRecord(bed_empty(task, text, clock_offset_ms=clock_offset_ms).upload, Verdict.EXEMPT)


def _unit(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))
