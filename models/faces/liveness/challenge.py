"""Challenge-response liveness: the server draws a short random sequence of actions, the patient does them
in order, and the landmarks over the burst show whether they were done.

A printed photo cannot blink or open its mouth; tilted or turned it can imitate a head turn, but its
landmarks then move as one plane (see `planarity`). A recorded clip performs the actions it happens to
contain, in its own order and at its own time: a random sequence drawn after the recording, with a time limit
per action, is something it cannot follow.

Each action is judged as a change from the patient's own neutral measures (`Baseline`): the median head pose,
the open-eye and closed-mouth levels of the burst. Thresholds are settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.faces.liveness.actions import HEAD_ACTIONS, Action
from models.faces.liveness.geometry import (
    eye_aspect_ratio,
    face_aspect,
    head_pose,
    mouth_aspect_ratio,
    nose_offsets,
)
from models.faces.liveness.track import FaceTrack
from models.settings import EngineSettings

# The 2-D nose shift (fractions of the face) that must go with a head action; a 15-degree turn moves the
# nose tip about a tenth of the way across the cheeks.
_NOSE_SHIFT = 0.04


@dataclass(frozen=True)
class Measure:
    """The landmark quantities of one frame."""

    index: int      # position of the frame in the burst
    time_s: float
    ear: float      # eye aspect ratio, corrected for tilt against the neutral face
    mar: float      # inner-lip mouth aspect ratio, corrected likewise
    yaw: float
    pitch: float
    nose_x: float   # nose across the cheeks (see geometry.nose_offsets)
    nose_y: float   # nose between eyes and mouth


@dataclass(frozen=True)
class Baseline:
    ear: float
    mar: float
    yaw: float
    pitch: float
    nose_x: float = 0.0
    nose_y: float = 0.0


@dataclass(frozen=True)
class ActionResult:
    action: Action
    passed: bool
    time_s: float | None   # when it was done (None: not done)
    frame_index: int | None  # the burst frame that shows it best (a key frame)
    value: float | None    # its strength: degrees for head actions, relative change for eyes and mouth
    wrong_action: Action | None = None  # an unprompted head action done while this one was asked for


def measure_track(track: FaceTrack, neutral_aspect: float | None = None) -> list[Measure]:
    """One `Measure` per tracked frame (frames whose pose cannot be solved are dropped).

    `neutral_aspect` is the face aspect of the neutral face; by default the burst's median.
    """
    raw = []
    for frame in track.tracked:
        pose = head_pose(frame.points, track.frame_size)
        if pose is None:
            continue
        raw.append((frame, pose, eye_aspect_ratio(frame.points), mouth_aspect_ratio(frame.points),
                    face_aspect(frame.points), nose_offsets(frame.points)))
    if not raw:
        return []
    neutral = neutral_aspect if neutral_aspect else float(np.median([r[4] for r in raw]))
    return [Measure(frame.index, frame.time_s, ear * _tilt(neutral, aspect), mar * _tilt(neutral, aspect),
                    pose.yaw_deg, pose.pitch_deg, nose[0], nose[1])
            for frame, pose, ear, mar, aspect, nose in raw]


def _tilt(neutral: float, aspect: float) -> float:
    return neutral / aspect if aspect > 0 else 1.0


def baseline_of(measures: Sequence[Measure], settings: EngineSettings) -> Baseline:
    """The patient's neutral face: median pose; open eyes (upper quartile) and closed mouth (lower quartile)
    measured on the frames near that pose (a turned head changes how open the eyes look)."""
    yaw = float(np.median([m.yaw for m in measures]))
    pitch = float(np.median([m.pitch for m in measures]))
    steady = [m for m in measures if abs(m.yaw - yaw) < settings.turn_yaw_deg / 2
              and abs(m.pitch - pitch) < settings.look_pitch_deg / 2]
    near = steady if len(steady) >= 3 else list(measures)
    return Baseline(ear=float(np.percentile([m.ear for m in near], 75)),
                    mar=float(np.percentile([m.mar for m in near], 25)), yaw=yaw, pitch=pitch,
                    nose_x=float(np.median([m.nose_x for m in near])),
                    nose_y=float(np.median([m.nose_y for m in near])))


def strength(action: Action, m: Measure, base: Baseline) -> float:
    """How far this frame goes in the direction of `action` (degrees, or a relative change)."""
    if action == Action.TURN_LEFT:
        return base.yaw - m.yaw
    if action == Action.TURN_RIGHT:
        return m.yaw - base.yaw
    if action == Action.LOOK_UP:
        return m.pitch - base.pitch
    if action == Action.LOOK_DOWN:
        return base.pitch - m.pitch
    if action == Action.OPEN_MOUTH:
        return m.mar - base.mar
    return 1.0 - m.ear / base.ear if base.ear > 0 else 0.0


def is_active(action: Action, m: Measure, base: Baseline, settings: EngineSettings, slack: float = 1.0) -> bool:
    """Whether one frame shows the action (`slack` < 1 relaxes the thresholds, for re-checks on JPEGs)."""
    value = strength(action, m, base)
    # A head action needs the nose to have moved inside the face the same way: a pose fit thrown off by
    # landmarks of a half-hidden face can swing tens of degrees, often the wrong way.
    if action in (Action.TURN_LEFT, Action.TURN_RIGHT):
        shift = (m.nose_x - base.nose_x) * (1 if action == Action.TURN_RIGHT else -1)
        return value >= slack * settings.turn_yaw_deg and shift >= slack * _NOSE_SHIFT
    if action in (Action.LOOK_UP, Action.LOOK_DOWN):
        shift = (m.nose_y - base.nose_y) * (1 if action == Action.LOOK_DOWN else -1)
        return value >= slack * settings.look_pitch_deg and shift >= slack * _NOSE_SHIFT
    if action == Action.OPEN_MOUTH:
        return value >= slack * settings.mouth_open_delta
    # Closed eyes count only with the head near neutral: looking down lowers the eyelids too.
    steady = (abs(m.pitch - base.pitch) < settings.look_pitch_deg
              and abs(m.yaw - base.yaw) < settings.turn_yaw_deg / 2)
    return steady and value >= slack * settings.blink_closure


def judge_sequence(measures: Sequence[Measure], actions: Sequence[Action],
                   settings: EngineSettings, *, start_s: float = 0.0) -> list[ActionResult]:
    """Each action in order, each after the previous one and within `challenge_action_timeout_s` of it."""
    if not measures:
        return [ActionResult(a, False, None, None, None) for a in actions]
    base = baseline_of(measures, settings)
    results: list[ActionResult] = []
    cursor, since = 0, start_s
    previous: Action | None = None
    for action in actions:
        found = _find(action, measures, base, settings, cursor, since)
        if found is None:
            results.append(ActionResult(action, False, None, None, None))
            results.extend(ActionResult(a, False, None, None, None) for a in actions[len(results):])
            return results
        done_at, peak = found
        wrong = (_unprompted(action, previous, measures, base, settings, cursor, done_at)
                 if settings.challenge_action_timeout_s else None)
        if wrong is not None:
            results.append(ActionResult(action, False, None, None, None, wrong))
            results.extend(ActionResult(a, False, None, None, None) for a in actions[len(results):])
            return results
        results.append(ActionResult(action, True, round(measures[done_at].time_s, 3), measures[peak].index,
                                    round(strength(action, measures[peak], base), 3)))
        cursor, since, previous = done_at + 1, measures[done_at].time_s, action
    return results


def judge_prompted(measures: Sequence[Measure], actions: Sequence[Action], prompts_s: Sequence[float],
                   settings: EngineSettings, window_s: float) -> tuple[list[ActionResult], list[str]]:
    """Each action newly begun after its own prompt and complete within `window_s` of it, in order.

    Returns the results and the reasons of the failures: `before_prompt:<action>` when the action was done,
    but before it was asked for (a recording playing its own order), `wrong_action:<other>` for a different
    head action held deliberately (`wrong_action_hold_s`) inside the window, `not_done:<action>` otherwise. A
    small natural movement stays under the action thresholds; a brief wrong turn, under the hold time.
    """
    results: list[ActionResult] = []
    reasons: list[str] = []
    if not measures:
        return [ActionResult(a, False, None, None, None) for a in actions], [f"not_done:{a.value}" for a in actions]
    # The patient's neutral face is the one before the first prompt: later the face is doing what was asked, and
    # a turn held for most of a short session would otherwise become the neutral pose.
    before = [m for m in measures if prompts_s and m.time_s < prompts_s[0]]
    base = baseline_of(before if len(before) >= 3 else measures, settings)
    windowed = settings.model_copy(update={"challenge_action_timeout_s": window_s})
    untimed = settings.model_copy(update={"challenge_action_timeout_s": 0.0})
    done_index, previous = -1, None
    for i, action in enumerate(actions):
        prompt = prompts_s[i]
        cursor = next((k for k, m in enumerate(measures) if m.time_s >= prompt and k > done_index), len(measures))
        found = _find(action, measures, base, windowed, cursor, prompt)
        wrong = _held_wrong(action, previous, measures, base, settings, cursor, prompt + window_s)
        if found is None or wrong is not None:
            earlier_from = next((k for k, m in enumerate(measures)
                                 if m.time_s >= (prompts_s[i - 1] if i else 0.0) and k > done_index), 0)
            early = _find(action, measures, base, untimed, earlier_from, 0.0)
            if wrong is not None:
                reasons.append(f"wrong_action:{wrong.value}")
            elif early is not None and measures[early[0]].time_s < prompt:
                reasons.append(f"before_prompt:{action.value}")
            else:
                reasons.append(f"not_done:{action.value}")
            results.append(ActionResult(action, False, None, None, None, wrong))
            for later in actions[i + 1:]:
                results.append(ActionResult(later, False, None, None, None))
                reasons.append(f"not_done:{later.value}")
            return results, reasons
        done_at, peak = found
        results.append(ActionResult(action, True, round(measures[done_at].time_s - prompt, 3), measures[peak].index,
                                    round(strength(action, measures[peak], base), 3)))
        done_index, previous = done_at, action
    return results, reasons


def _held_wrong(action: Action, previous: Action | None, measures: Sequence[Measure], base: Baseline,
                settings: EngineSettings, cursor: int, until_s: float) -> Action | None:
    """A head action other than `action` (and than the one just done) held for `wrong_action_hold_s` between
    `cursor` and `until_s`: a deliberate wrong action, not a patient settling."""
    for other in sorted(HEAD_ACTIONS - {action, previous}):
        run_start: int | None = None
        index = cursor
        while index < len(measures) and is_active(other, measures[index], base, settings):
            index += 1  # held from before the prompt: not an answer to it
        for k in range(index, len(measures)):
            m = measures[k]
            if m.time_s > until_s:
                break
            if is_active(other, m, base, settings):
                run_start = k if run_start is None else run_start
                if m.time_s - measures[run_start].time_s >= settings.wrong_action_hold_s:
                    return other
            else:
                run_start = None
    return None


def _unprompted(action: Action, previous: Action | None, measures: Sequence[Measure], base: Baseline,
                settings: EngineSettings, cursor: int, done_at: int) -> Action | None:
    """A head action other than `action` newly done before `action` was: the face is not following prompts.

    A replayed clip of a patient moving naturally does turns and nods of its own; a patient follows the
    prompt. Only judged live (with a time limit): a recorded clip judged offline was never prompted. Blinks
    and mouth movements are spontaneous and do not count, nor does the action just done (`previous`): a
    patient still holding a turn, or coming back from it, passes in and out of its threshold.
    """
    for other in HEAD_ACTIONS - {action, previous}:
        active = [is_active(other, m, base, settings) for m in measures[:done_at + 1]]
        index = cursor
        while index <= done_at and active[index]:
            index += 1  # still held from before this action was asked for
        run_start: int | None = None
        for i in range(index, done_at + 1):
            if active[i]:
                run_start = i if run_start is None else run_start
                if measures[i].time_s - measures[run_start].time_s >= settings.action_hold_s and i > run_start:
                    return other
            else:
                run_start = None
    return None


def _find(action: Action, measures: Sequence[Measure], base: Baseline, settings: EngineSettings, cursor: int,
          since: float) -> tuple[int, int] | None:
    """(index where the action is complete, index of its strongest frame), searching from `cursor`.

    The action must newly begin: a pose still held from the previous action does not count twice.
    """
    limit = settings.challenge_action_timeout_s
    if action == Action.BLINK:
        active = [is_active(action, m, local, settings) for m, local in zip(
            measures, _local_baselines(measures, base), strict=True)]
    else:
        active = [is_active(action, m, base, settings) for m in measures]
    index = cursor
    while index < len(measures) and active[index]:
        index += 1
    while index < len(measures):
        if limit and measures[index].time_s - since > limit:
            return None
        if not active[index]:
            index += 1
            continue
        end = index
        while end + 1 < len(measures) and active[end + 1]:
            end += 1
        run = range(index, end + 1)
        peak = max(run, key=lambda i: strength(action, measures[i], base))
        if action == Action.BLINK:
            closed_s = measures[end].time_s - measures[index].time_s
            reopened = end + 1 < len(measures)
            if reopened and closed_s <= settings.blink_max_s and index > 0:
                return end + 1, peak
        elif measures[end].time_s - measures[index].time_s >= settings.action_hold_s and end > index:
            done = next(i for i in run if measures[i].time_s - measures[index].time_s >= settings.action_hold_s)
            if not limit or measures[done].time_s - since <= limit:
                return done, peak
            return None
        index = end + 1
    return None


def _local_baselines(measures: Sequence[Measure], base: Baseline, window_s: float = 0.75) -> list[Baseline]:
    """The open-eye level around each frame: a blink is a short dip below the eyes' level of the moment, which
    drifts with the light and the pose over a longer burst. The pose stays the burst's neutral one."""
    times = np.array([m.time_s for m in measures])
    out = []
    for m in measures:
        near = [measures[int(i)] for i in np.flatnonzero(np.abs(times - m.time_s) <= window_s)]
        out.append(Baseline(ear=float(np.percentile([n.ear for n in near], 75)), mar=base.mar, yaw=base.yaw,
                            pitch=base.pitch, nose_x=base.nose_x, nose_y=base.nose_y))
    return out


def neutral_frame(measures: Sequence[Measure], settings: EngineSettings, before_s: float | None) -> int | None:
    """The burst frame closest to the neutral face (pose, eyes, mouth), before `before_s` when possible."""
    if not measures:
        return None
    base = baseline_of(measures, settings)
    candidates = [i for i, m in enumerate(measures) if before_s is None or m.time_s < before_s] or list(
        range(len(measures)))

    def distance(i: int) -> float:
        m = measures[i]
        return (abs(m.yaw - base.yaw) + abs(m.pitch - base.pitch) + 20.0 * max(0.0, base.ear - m.ear)
                + 20.0 * max(0.0, m.mar - base.mar))

    return measures[min(candidates, key=distance)].index
