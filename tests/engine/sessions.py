"""Capture sessions built from the real clips of ../shared/faces/video_liveness (its README's timelines).

A prompt-aligned session is a person doing what was asked, promptly: each clip's timed segments spliced in the
order and timing of a drawn challenge (neutral face until a short reaction after each prompt, then the clip's
segment of that action, then neutral again). A replayed session is a recording that cannot know the challenge:
a window of a live clip, or the replay and photo-on-phone clips, with the prompts reported where the task drew
them (the attacking device knows the task; its recording does not).

Each clip is decoded and tracked once (the device's tracker, the configured landmarker); a spliced session
reuses those landmarks frame by frame, re-timed, as the device's full-rate track of it. Used by the tests
(tests/engine/test_session_clips.py, tests/edge) and by scripts/bench_session.py.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from models.faces.decode import RGBImage, fit_side
from models.faces.liveness.actions import RESPONSE_WINDOW_S, Action, draw_challenge, prompt_schedule
from models.faces.liveness.burst import read_burst
from models.faces.liveness.track import FaceTrack, Landmarker, TrackedFrame, default_landmarker, track_frames
from models.settings import EngineSettings

CLIP_SIDE_PX = 640  # the device keeps frames this small (edge_client/prompt.py)
Span = tuple[float, float]

# Segments in clip seconds (README timelines, image coordinates). An action's segment is its onset and its
# return (the middle of a long held turn is left out), so a prompt-aligned action lasts at most about 2 s.
LIVE_CLIPS: dict[str, dict[str, list[Span]]] = {
    "tran_real_headturns.mp4": {
        "neutral": [(0.2, 1.8), (18.3, 20.6)],
        Action.TURN_RIGHT.value: [(1.9, 2.9), (5.3, 6.1)],
        Action.TURN_LEFT.value: [(7.3, 8.2), (9.2, 10.8)],
        Action.LOOK_UP.value: [(14.3, 15.3), (15.8, 16.4)],
        # Its blinks (16.45 and 17.8 s) are too shallow for Face Mesh's eye ratio at the re-fitted closure
        # threshold (0.263 against 0.28 open at 17.8 s): not offered.
    },
    "liveportrait_d12_mouth_turns.mp4": {
        "neutral": [(0.0, 1.35), (2.2, 3.0)],
        Action.TURN_RIGHT.value: [(1.35, 2.1)],
        Action.TURN_LEFT.value: [(3.0, 3.8)],
        Action.OPEN_MOUTH.value: [(4.4, 5.5)],
    },
}
# Recordings that cannot follow a challenge drawn after them.
REPLAY_CLIPS = ("tran_replay_monitor.mp4", "lestari_photo_on_phone.mp4")
LIVE_WINDOW_CLIPS = ("tran_real_headturns.mp4", "liveportrait_d12_mouth_turns.mp4", "liveportrait_d9_blinks.mp4",
                     "liveportrait_d13_talking_blinks.mp4", "liveportrait_d18_mouth_open.mp4",
                     "lestari_real_frontal.mp4")


@dataclass(frozen=True)
class Clip:
    name: str
    frames: list[RGBImage]
    fps: float
    track: FaceTrack  # the device's tracker over the whole clip

    def at(self, seconds: float) -> int:
        return min(len(self.frames) - 1, max(0, int(round(seconds * self.fps))))


@dataclass(frozen=True)
class Burst:
    """What a device would have filmed: frames, their times, its full-rate track, the prompts it reported."""

    frames: list[RGBImage]
    times_s: list[float]
    track: FaceTrack
    actions: list[Action]
    prompts_s: list[float]
    label: str


@cache
def load_clip(folder: str, name: str) -> Clip:
    settings = EngineSettings()
    burst = read_burst(str(Path(folder) / name), settings)
    frames = [fit_side(f, CLIP_SIDE_PX) for f in burst.frames]
    fps = (len(burst.times_s) - 1) / burst.times_s[-1] if burst.times_s[-1] > 0 else settings.liveness_fps
    track = track_frames(frames, burst.times_s, default_landmarker(settings), settings)
    return Clip(name, frames, fps, track)


def _burst_of(clip: Clip, indices: Sequence[int], actions: list[Action], prompts: list[float], label: str) -> Burst:
    """The clip's frames at `indices`, re-timed at the clip's rate, with the clip's landmarks re-indexed."""
    tracked = {f.index: f for f in clip.track.tracked}
    times = [k / clip.fps for k in range(len(indices))]
    track = FaceTrack(len(indices), clip.track.frame_size, images=[clip.frames[j] for j in indices])
    for k, j in enumerate(indices):
        if j in tracked:
            f = tracked[j]
            track.tracked.append(TrackedFrame(k, times[k], f.points, f.box, f.detected))
    assert track.images is not None
    return Burst(list(track.images), times, track, actions, prompts, label)


def _neutral(spans: list[Span], clip: Clip) -> list[int]:
    """The clip's neutral frames played back and forth (a face at rest for as long as needed)."""
    forward = [j for a, b in spans for j in range(clip.at(a), clip.at(b) + 1)]
    return forward + forward[::-1]


def drawable(clip_name: str, rng: random.Random, length: int = 2) -> tuple[list[Action], str]:
    """A challenge drawn by the shipped draw, redrawn until the clip holds every action (and a nonce for its
    prompt schedule); for a clip without a face action the landmarks see, a random ordered pair of its head
    actions."""
    have = {a for a in LIVE_CLIPS[clip_name] if a != "neutral"}
    for _ in range(200):
        actions = draw_challenge(rng, length)
        if all(a.value in have for a in actions):
            return actions, f"nonce-{rng.getrandbits(64):016x}"
    return [Action(a) for a in rng.sample(sorted(have), length)], f"nonce-{rng.getrandbits(64):016x}"


def prompt_aligned(clip: Clip, actions: list[Action], nonce: str, rng: random.Random,
                   lead_s: float | None = None) -> Burst:
    """A person doing what was asked, promptly: the clip's segments in the order and timing of the challenge,
    each begun a reaction time (0.3-0.8 s) after its prompt, or `lead_s` after it (negative: before it)."""
    spans = LIVE_CLIPS[clip.name]
    neutral = _neutral(spans["neutral"], clip)
    prompts = prompt_schedule(nonce, len(actions))
    end_s = prompts[-1] + RESPONSE_WINDOW_S + 0.3
    indices: list[int] = []
    rest = 0

    def rest_until(seconds: float) -> None:
        nonlocal rest
        while len(indices) / clip.fps < seconds:
            indices.append(neutral[rest % len(neutral)])
            rest += 1

    for action, prompt in zip(actions, prompts, strict=True):
        rest_until(prompt + (rng.uniform(0.3, 0.8) if lead_s is None else lead_s))
        for a, b in spans[action.value]:
            indices.extend(range(clip.at(a), clip.at(b) + 1))
    rest_until(end_s)
    return _burst_of(clip, indices, actions, prompts, f"{clip.name} {'+'.join(a.value for a in actions)}")


def replayed(clip: Clip, actions: list[Action], nonce: str, start_s: float) -> Burst:
    """A recording played from `start_s` for as long as the challenge takes (back and forth when it is shorter),
    with the prompts reported at the drawn times."""
    prompts = prompt_schedule(nonce, len(actions))
    count = int((prompts[-1] + RESPONSE_WINDOW_S + 0.3) * clip.fps)
    cycle = list(range(len(clip.frames))) + list(range(len(clip.frames) - 2, 0, -1))
    first = clip.at(start_s)
    indices = [cycle[(first + k) % len(cycle)] for k in range(count)]
    return _burst_of(clip, indices, actions, prompts, f"{clip.name}@{start_s:.1f} {'+'.join(a.value for a in actions)}")


def landmarker(settings: EngineSettings) -> Landmarker:
    return default_landmarker(settings)


def spread(values: Sequence[float]) -> str:
    return f"{np.median(values):.3f} median, {max(values):.3f} max" if values else "none"
