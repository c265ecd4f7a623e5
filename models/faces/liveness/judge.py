"""Liveness of a burst: the challenge in order and the 3-D test (tablets), or motion over a window (bed
cameras). A single frame, or frames that do not change, are never live.

    result = check_challenge(track, [Action.TURN_LEFT, Action.BLINK], settings, passive_score=0.9)

`result.key_frames` names the burst frames the device uploads as evidence: the neutral frame, then one per
action at its strongest. The server re-runs the same judgement on them (`recheck_key_frames`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.faces.detect import Box
from models.faces.liveness.actions import HEAD_ACTIONS, Action
from models.faces.liveness.challenge import (
    ActionResult,
    Baseline,
    Measure,
    is_active,
    judge_sequence,
    measure_track,
    neutral_frame,
    strength,
)
from models.faces.liveness.geometry import Points, face_aspect
from models.faces.liveness.passive import LivenessResult
from models.faces.liveness.planarity import (
    Planarity,
    PlanarityResult,
    judge_planarity,
    looks_planar,
    nose_parallax,
)
from models.faces.liveness.track import FaceTrack, TrackedFrame
from models.settings import EngineSettings

MIN_FRAMES = 3


def check_challenge(track: FaceTrack, actions: Sequence[Action], settings: EngineSettings, *,
                    passive_score: float = 1.0, cues: dict[str, float] | None = None) -> LivenessResult:
    """Whether the tracked face did `actions` in order, in time, as a 3-D head."""
    reasons: list[str] = []
    measures = measure_track(track)
    if not actions:
        reasons.append("no_challenge")
    if track.frames_seen <= 1:
        reasons.append("single_frame")
    if not track.tracked:
        reasons.append("no_face")
    elif len(measures) < MIN_FRAMES:
        reasons.append("too_few_frames")
    results = judge_sequence(measures, actions, settings)
    reasons += [f"wrong_action:{r.wrong_action.value}" for r in results if r.wrong_action is not None]
    reasons += [f"not_done:{r.action.value}" for r in results if not r.passed]
    done = [r for r in results if r.passed]
    first_action_s = min((r.time_s for r in done if r.time_s is not None), default=None)
    reference = neutral_frame(measures, settings, first_action_s)
    points = {f.index: f.points for f in track.tracked}
    planarity = (judge_planarity(points, measures, reference, settings, track.images) if reference is not None
                 else PlanarityResult(Planarity.NOT_MEASURED, None, None, 0.0, 0, settings.planar_depth_threshold))
    # Every drawn challenge moves the head (actions.draw_challenge): the 3-D test is then a proof the burst
    # must give, and its failure is always reported, beside whatever else failed, so a refusal can be traced
    # to it (a swung photo seldom turns the fitted pose far enough to be measured: it shows no 3-D motion).
    needs_3d = any(a in HEAD_ACTIONS for a in actions)
    if planarity.verdict == Planarity.PLANAR:
        reasons.append("planar_motion")
    elif needs_3d and planarity.verdict != Planarity.SOLID:
        reasons.append("no_3d_motion")
    is_live = not reasons
    key_frames = ((("neutral", reference),) if reference is not None else ()) + tuple(
        (r.action.value, r.frame_index) for r in done if r.frame_index is not None)
    score = _score(len(done) / max(len(actions), 1), planarity.verdict, passive_score, is_live, settings)
    return LivenessResult(is_live, score, any(r.action == Action.BLINK for r in done), round(passive_score, 3),
                          tuple(reasons), cues or {}, "challenge", tuple(results), planarity, key_frames)


def check_motion(track: FaceTrack, settings: EngineSettings, *, passive_score: float = 1.0,
                 cues: dict[str, float] | None = None) -> LivenessResult:
    """A fixed bed camera, no challenge: signs of life over the window.

    A living patient, even asleep, sooner or later blinks, moves the mouth or shifts the head in 3-D; a
    photo on the pillow does none of these, and moved about it moves as a plane. When no sign is seen in
    the window liveness is not established: the result says so, and the server sends it to review, never to
    `verified`. `motion` reports the strongest sign, as a fraction of its threshold.
    """
    reasons: list[str] = []
    frames = track.tracked
    measures = measure_track(track)
    if track.frames_seen <= 1:
        reasons.append("single_frame")
    if len(measures) < MIN_FRAMES:
        reasons += ["no_face" if not frames else "too_few_frames", "liveness_not_established"]
        return LivenessResult(False, 0.0, False, round(passive_score, 3), tuple(reasons), cues or {}, "motion")
    reference = neutral_frame(measures, settings, None)
    assert reference is not None
    points = {f.index: f.points for f in frames}
    planarity = judge_planarity(points, measures, reference, settings, track.images)
    signs: list[tuple[str, float, int]] = []  # (sign, strength over its threshold, frame index)
    untimed = settings.model_copy(update={"challenge_action_timeout_s": 0.0})
    blink = judge_sequence(measures, [Action.BLINK], untimed)[0]
    if blink.passed and blink.frame_index is not None:
        signs.append(("blink", 1.0, blink.frame_index))
    mouth = max(measures, key=lambda m: m.mar)
    mouth_change = (mouth.mar - min(m.mar for m in measures)) / (settings.mouth_open_delta / 2)
    if mouth_change >= 1.0:
        signs.append(("mouth", mouth_change, mouth.index))
    if planarity.verdict == Planarity.SOLID:
        first = measures[0]
        moved = max(measures, key=lambda m: abs(m.yaw - first.yaw) + abs(m.pitch - first.pitch))
        signs.append(("head_3d", (planarity.depth or 0.0) / settings.planar_depth_threshold, moved.index))
    if planarity.verdict == Planarity.PLANAR:
        reasons.append("planar_motion")
    if not signs:
        reasons.append("no_sign_of_life")
    is_live = not reasons
    if not is_live and planarity.verdict != Planarity.PLANAR:
        # Nothing says attack either: a reviewer decides (a moved photo, planar, is a spoof outright).
        reasons.append("liveness_not_established")
    strongest = max(signs, key=lambda sign: sign[1]) if signs else None
    key_frames = (("neutral", reference),) + ((("motion", strongest[2]),) if strongest else ())
    motion = round(strongest[1], 3) if strongest else 0.0
    score = _score(min(1.0, motion), planarity.verdict, passive_score, is_live, settings)
    return LivenessResult(is_live, score, any(sign[0] == "blink" for sign in signs), round(passive_score, 3),
                          tuple(reasons), cues or {}, "motion", (), planarity, key_frames, motion)


def _score(done: float, planarity: Planarity, passive: float, is_live: bool, settings: EngineSettings) -> float:
    solid = {Planarity.SOLID: 1.0, Planarity.NOT_MEASURED: 0.5, Planarity.PLANAR: 0.0}[planarity]
    score = 0.7 * done + 0.3 * solid - settings.passive_weight * (1.0 - passive)
    score = float(np.clip(score, 0.0, 1.0))
    return round(score if is_live else min(score, 0.49), 3)


def recheck_key_frames(frames: Sequence[tuple[str, Points | None]], frame_size: Sequence[tuple[int, int]],
                       actions: Sequence[Action], settings: EngineSettings, *, slack: float = 0.8) -> list[str]:
    """The server's second look: what the key frames fail to show, as reasons (empty = they agree).

    `frames` are (role, landmarks) in upload order: "neutral" first, then one per action. Each action must be
    visible in its frame against the neutral one (thresholds relaxed by `slack` for JPEG noise), and frames
    that moved the head must not map onto the neutral one by a homography.
    """
    if not frames or frames[0][0] != "neutral" or frames[0][1] is None:
        return ["no_neutral_frame"]
    neutral_points = frames[0][1]
    track = FaceTrack(len(frames), frame_size[0], [
        TrackedFrame(i, float(i), p, _dummy_box(), True) for i, (_, p) in enumerate(frames) if p is not None])
    # Each key frame may have its own size (they are resized independently): pose per frame with its own size.
    measures = _measures_per_size(track, frame_size, face_aspect(neutral_points))
    by_index = {m.index: m for m in measures}
    if 0 not in by_index:
        return ["no_neutral_frame"]
    n = by_index[0]
    base = Baseline(ear=n.ear, mar=n.mar, yaw=n.yaw, pitch=n.pitch)
    reasons: list[str] = []
    roles = [role for role, _ in frames]
    for action in actions:
        if action.value not in roles:
            reasons.append(f"no_key_frame:{action.value}")
            continue
        index = roles.index(action.value)
        m = by_index.get(index)
        if m is None:
            reasons.append(f"no_face:{action.value}")
        elif not is_active(action, m, base, settings, slack=slack):
            reasons.append(f"not_shown:{action.value}")
    moved = [i for i, m in by_index.items() if i != 0
             and np.hypot(m.yaw - n.yaw, m.pitch - n.pitch) >= settings.planar_min_pose_deg]
    if moved:
        points = {f.index: f.points for f in track.tracked}
        depth, residual = nose_parallax(points, 0, {i: (by_index[i].yaw - n.yaw, by_index[i].pitch - n.pitch)
                                                    for i in moved})
        if looks_planar(depth, residual, settings, slack):
            reasons.append("planar_motion")
    elif any(a in HEAD_ACTIONS for a in actions):
        reasons.append("no_3d_motion")
    return reasons


def _measures_per_size(track: FaceTrack, sizes: Sequence[tuple[int, int]], neutral_aspect: float) -> list[Measure]:
    out: list[Measure] = []
    for frame in track.tracked:
        single = FaceTrack(1, sizes[frame.index], [frame])
        out += measure_track(single, neutral_aspect)
    return out


def _dummy_box() -> Box:
    return Box(0, 1, 1, 0)


def action_strengths(results: Sequence[ActionResult]) -> dict[str, float | None]:
    return {r.action.value: r.value for r in results}


__all__ = ["check_challenge", "check_motion", "recheck_key_frames", "strength", "action_strengths"]
