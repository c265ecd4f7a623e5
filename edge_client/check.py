"""One bed check: a capture burst -> liveness, best frames, local match -> a `ResultUpload` with evidence.

The device's own verdict is a preview for the nurse's screen; the server decides again with its own
threshold and enrolled embeddings (server/checks/policy.py), from the outcome sent here:
no face -> absent, bed empty -> absent, failed liveness -> spoof, liveness not established or a patient who
cannot take part -> review (unrecognised), live face -> verified or impersonated. The key frames of the
liveness judgement go with the crop; the server re-checks them.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from edge_client.place import scene_b64
from models.faces import crop_to_jpeg
from models.faces.decode import RGBImage
from models.faces.engine import BurstResult, FaceEngine
from models.faces.liveness.actions import CannotTakePart, LivenessMethod, prompt_schedule
from models.faces.liveness.passive import LivenessResult
from models.faces.liveness.report import liveness_report
from models.faces.liveness.session import capture_session, judge_session
from models.faces.liveness.track import FaceTrack, Landmarker, default_landmarker, track_frames
from models.faces.match import Embeddings, match
from models.verdicts import CaptureOutcome, ExemptionReason, Verdict
from models.wire import CaptureSession, LivenessReport, PlaceCues, ResultUpload, SceneSource, TaskRead


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
                 *, times_s: list[float] | None = None, mode: str = "challenge", clock_offset_ms: int = 0,
                 encode_best: int = 3, cannot_take_part: CannotTakePart | None = None, note: str = "",
                 landmarker: Landmarker | None = None, track: FaceTrack | None = None,
                 scene_source: SceneSource = SceneSource.TABLET, place: PlaceCues | None = None,
                 prompts_s: list[float] | None = None) -> CheckRecord:
    """Judges frames captured at the task's bed: the face from the best few, liveness by the one judge of a
    capture session (models/faces/liveness/session.py) on the very session uploaded; a face result carries
    that session and the scene (faces blurred).

    `mode` is "challenge" (a tablet: the task's actions, each after its prompt) or "motion" (a fixed bed
    camera: signs of life over the window). `prompts_s` are the times the prompts were shown (burst time);
    a clip or a folder is taken to follow the task's drawn schedule. With `cannot_take_part` the nurse has said
    why the patient cannot do the challenge: the face is still captured and matched, the result goes to
    review, never to verified.
    """
    started = time.perf_counter()
    if not frames:
        upload = ResultUpload(**_base(task, CaptureOutcome.NO_FACE, clock_offset_ms, "the source gave no frames",
                                      engine_tag=engine.tag))
        return CheckRecord(upload, Verdict.ABSENT, {"analysis": 0.0})
    times = times_s if times_s is not None else [i / engine.settings.liveness_fps for i in range(len(frames))]
    if track is None:  # a live capture tracks while it reads; files and folders are tracked here
        track = track_frames(frames, times, landmarker or default_landmarker(engine.settings), engine.settings)
    tracked = time.perf_counter()
    burst = engine.check_burst(_for_encoding(frames, track), encode_best=encode_best)
    analysed = time.perf_counter()
    timings = {"tracking": (tracked - started) * 1000, "analysis": (analysed - started) * 1000}
    if burst.encoding is None:
        note = "no usable face in the burst" + (f" ({', '.join(burst.reasons)})" if burst.reasons else "")
        upload = ResultUpload(**_base(task, CaptureOutcome.NO_FACE, clock_offset_ms, note, engine_tag=engine.tag))
        return CheckRecord(upload, Verdict.ABSENT, timings)
    passive = burst.liveness.passive_score if burst.liveness.cues else 1.0
    actions = list(task.challenge) if mode == "challenge" else []
    schedule = task.challenge_prompts_s or prompt_schedule(task.nonce, len(actions))
    prompts = list(prompts_s) if prompts_s is not None else list(schedule)
    picks = _encoding_picks(frames, track)
    crop_index = picks[burst.crop_frame] if burst.crop_frame is not None and burst.crop_frame < len(picks) else 0
    session, live = _session(frames, times, track, actions, prompts, schedule, crop_index, mode,
                             landmarker or default_landmarker(engine.settings), engine, passive, burst.liveness.cues)
    timings["session"] = (time.perf_counter() - analysed) * 1000
    record = _face_record(engine, burst, live, task, enrolled, clock_offset_ms, session, cannot_take_part, note)
    upload = record.upload.model_copy(update={"scene_jpeg_b64": scene_b64(frames, engine.settings),
                                              "scene_source": scene_source, "place": place})
    timings["evidence"] = (time.perf_counter() - analysed) * 1000
    return CheckRecord(upload, record.local_verdict, timings)


def _for_encoding(frames: list[RGBImage], track: FaceTrack, count: int = 6) -> list[RGBImage]:
    """A few frames spread over the track for the face encoding (each costs a detection and maybe an encoding)."""
    return [frames[i] for i in _encoding_picks(frames, track, count)]


def _encoding_picks(frames: list[RGBImage], track: FaceTrack, count: int = 6) -> list[int]:
    if not track.tracked:
        return list(range(len(frames)))[:: max(1, len(frames) // count)][:count]
    picks = np.linspace(0, len(track.tracked) - 1, min(count, len(track.tracked))).round().astype(int)
    return [track.tracked[int(i)].index for i in picks]


def _session(frames: list[RGBImage], times: list[float], track: FaceTrack, actions: list[Any], prompts: list[float],
             schedule: list[float], crop_index: int, mode: str, landmarker: Landmarker, engine: FaceEngine,
             passive: float, cues: dict[str, float]) -> tuple[CaptureSession | None, LivenessResult]:
    """The capture session to upload and the one judge's judgement of it (what the server will re-judge)."""
    if not track.tracked:
        return None, LivenessResult(False, 0.0, False, passive, ("no_face",), cues, mode)
    wire, session = capture_session(frames, times, track, actions, prompts, engine.settings, crop_index=crop_index)
    method = LivenessMethod.MOTION if mode == "motion" else LivenessMethod.CHALLENGE
    judged = judge_session(session, actions, landmarker, engine.settings, method=method,
                           schedule=schedule if actions else None)
    return wire, judged.as_result(passive, cues)


def _face_record(engine: FaceEngine, burst: BurstResult, live: LivenessResult, task: TaskRead,
                 enrolled: Embeddings | None, clock_offset_ms: int, session: CaptureSession | None,
                 cannot_take_part: CannotTakePart | None, note: str) -> CheckRecord:
    assert burst.encoding is not None and burst.crop_rgb is not None
    report = liveness_report(live)
    if cannot_take_part is not None:
        report = LivenessReport(is_live=False, score=0.0, passive_score=report.passive_score,
                                reasons=[f"cannot_take_part:{cannot_take_part.value}"],
                                method=LivenessMethod.CANNOT_TAKE_PART, cannot_take_part=cannot_take_part,
                                challenge=list(task.challenge))
    outcome = CaptureOutcome.FACE_CAPTURED if report.is_live or cannot_take_part else CaptureOutcome.SPOOF
    if "liveness_not_established" in report.reasons:
        outcome = CaptureOutcome.FACE_CAPTURED  # not an attack: the server sends it to review
    threshold = engine.settings.match_threshold
    probe = Embeddings.of(engine.tag, burst.encoding)
    matched = match(enrolled, probe, threshold) if enrolled is not None and len(enrolled) else None
    if not report.is_live:
        verdict = Verdict.SPOOF if outcome == CaptureOutcome.SPOOF else Verdict.UNRECOGNISED
    elif matched is None:
        verdict = Verdict.UNRECOGNISED
    else:
        verdict = Verdict.VERIFIED if matched.is_match else Verdict.IMPERSONATED
    jpeg = crop_to_jpeg(burst.crop_rgb)
    quality = [r for r in burst.reasons if r not in live.reasons]
    remark = "; ".join(part for part in (note, f"quality: {', '.join(quality)}" if quality else "") if part)
    upload = ResultUpload(
        **_base(task, outcome, clock_offset_ms, remark, engine_tag=engine.tag),
        embedding=[float(x) for x in burst.encoding],
        distance=round(matched.distance, 6) if matched is not None else None,
        liveness=report,
        face_crop_jpeg_b64=base64.b64encode(jpeg).decode("ascii"),
        evidence_sha256=hashlib.sha256(jpeg).hexdigest(),
        frames_used=burst.frames_used, other_faces=burst.other_faces, threshold=threshold,
        session=session)
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


