"""A liveness judgement as the device uploads it: the wire report and the key-frame JPEGs."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Sequence

from models.faces import crop_to_jpeg
from models.faces.decode import RGBImage, fit_side
from models.faces.liveness.actions import LivenessMethod
from models.faces.liveness.passive import LivenessResult
from models.wire import ActionReport, KeyFrame, LivenessReport

# Key frames are sent whole (the server finds the face itself), reduced to this size: a face at the bed stays
# well over 100 px, and a frame is 20-40 kB.
KEY_FRAME_SIDE_PX = 480


def _unit(value: float) -> float:
    return float(min(max(value, 0.0), 1.0)) if math.isfinite(value) else 0.0


def _measured(value: float | None) -> float | None:
    # A cue that came out NaN (a degenerate homography, no motion to divide by) was not measured: the
    # server refuses a report holding a non-finite number, which would lose the whole result.
    return float(value) if value is not None and math.isfinite(value) else None


def liveness_report(result: LivenessResult) -> LivenessReport:
    """The wire form of a judgement (reasons capped at the schema's 20)."""
    planarity = result.planarity
    return LivenessReport(
        is_live=result.is_live, score=_unit(result.score), blink_detected=result.blink_detected,
        passive_score=_unit(result.passive_score), reasons=list(result.reasons)[:20],
        method=LivenessMethod(result.method) if result.method in LivenessMethod._value2member_map_
        else LivenessMethod.NONE,
        challenge=[a.action for a in result.actions],
        actions=[ActionReport(action=a.action, passed=a.passed, time_s=_measured(a.time_s), value=_measured(a.value))
                 for a in result.actions],
        planarity=planarity.verdict.value if planarity is not None else None,
        depth=_measured(planarity.depth) if planarity is not None else None,
        residual=_measured(planarity.residual) if planarity is not None else None,
        motion=_measured(result.motion))


def key_frames(result: LivenessResult, frames: Sequence[RGBImage], times_s: Sequence[float]) -> list[KeyFrame]:
    """The JPEGs of the frames the judgement names (neutral first, then one per action)."""
    out = []
    for role, index in result.key_frames:
        if not 0 <= index < len(frames):
            continue
        jpeg = crop_to_jpeg(fit_side(frames[index], KEY_FRAME_SIDE_PX), quality=85)
        out.append(KeyFrame(role=role, time_s=round(max(0.0, float(times_s[index])), 3),
                            jpeg_b64=base64.b64encode(jpeg).decode("ascii"), sha256=hashlib.sha256(jpeg).hexdigest()))
    return out

