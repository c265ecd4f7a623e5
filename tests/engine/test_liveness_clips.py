"""Challenge liveness on real clips (../shared/faces/video_liveness, each with a README timeline, and
../shared/faces/video): a challenge of actions the clip contains passes, one it does not contain fails, and
a replayed clip does not pass random challenges it was not made for."""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import pytest

from models.faces.liveness.actions import HEAD_ACTIONS, Action, draw_challenge, parse_challenge
from models.faces.liveness.burst import read_burst
from models.faces.liveness.judge import check_challenge, check_motion
from models.faces.liveness.track import FaceTrack, default_landmarker, track_frames
from models.settings import EngineSettings
from tests.conftest import faces_root

pytestmark = [pytest.mark.faces, pytest.mark.slow]

# Judging a recorded clip from its start: no time limit per action (the clip was not filmed for a prompt).
UNTIMED = EngineSettings(challenge_action_timeout_s=0.0)


@cache
def tracked(name: str) -> FaceTrack:
    root = faces_root()
    assert root is not None
    path = root / "video_liveness" / name if (root / "video_liveness" / name).exists() else root / "video" / name
    burst = read_burst(str(path), UNTIMED)
    return track_frames(burst.frames, burst.times_s, default_landmarker(UNTIMED), UNTIMED)


@pytest.fixture(autouse=True)
def _clips_present(faces_dir: Path) -> None:
    if not (faces_dir / "video_liveness").is_dir():
        pytest.skip("../shared/faces/video_liveness not present")


# (clip, challenge, live?) from each clip's README timeline; directions in image coordinates.
CASES = [
    # nose to image-right 2.0-5.8 s, to image-left 7.4-10.5 s, looks up 14.4-16.4 s, mouth closed throughout
    ("tran_real_headturns.mp4", "turn_right", True),
    ("tran_real_headturns.mp4", "turn_left", True),
    ("tran_real_headturns.mp4", "look_up", True),
    ("tran_real_headturns.mp4", "turn_right,turn_left", True),
    ("tran_real_headturns.mp4", "turn_left,look_up", True),
    ("tran_real_headturns.mp4", "open_mouth", False),
    ("tran_real_headturns.mp4", "turn_left,turn_right", False),   # right comes before left, never after
    ("tran_real_headturns.mp4", "look_up,turn_left", False),
    # mouth wide open 2.1-3.2 s and 3.9-5.2 s, blinks 3.18 s and 6.22 s, frontal throughout
    ("liveportrait_d18_mouth_open.mp4", "open_mouth", True),
    ("liveportrait_d18_mouth_open.mp4", "blink", True),
    ("liveportrait_d18_mouth_open.mp4", "open_mouth,blink", True),
    ("liveportrait_d18_mouth_open.mp4", "turn_left", False),
    ("liveportrait_d18_mouth_open.mp4", "turn_right", False),
    ("liveportrait_d18_mouth_open.mp4", "look_up", False),
    # blinks and slow closures throughout, frontal, no wide mouth opening
    ("liveportrait_d9_blinks.mp4", "blink", True),
    ("liveportrait_d9_blinks.mp4", "open_mouth", False),
    ("liveportrait_d9_blinks.mp4", "turn_left", False),
    ("liveportrait_d9_blinks.mp4", "turn_right", False),
    # talking, blinks at 1.45, 2.67, 3.43 and 10.5 s; the mouth never opens wide
    ("liveportrait_d13_talking_blinks.mp4", "blink", True),
    ("liveportrait_d13_talking_blinks.mp4", "open_mouth", False),
    ("liveportrait_d13_talking_blinks.mp4", "turn_right", False),
    # mouth wide open at 4.6-5.3 s
    ("liveportrait_d12_mouth_turns.mp4", "open_mouth", True),
    ("liveportrait_d12_mouth_turns.mp4", "look_down", False),
    # frontal the whole time, no clear blink, no mouth opening
    ("lestari_real_frontal.mp4", "turn_left", False),
    ("lestari_real_frontal.mp4", "open_mouth", False),
    # ATTACK: a still photo on a phone, moved by hand shake only
    *[("lestari_photo_on_phone.mp4", action.value, False) for action in Action],
    # ATTACK: a monitor replay of tran_real_headturns, everything about 2.7 s later
    ("tran_replay_monitor.mp4", "turn_left,turn_right", False),
    ("tran_replay_monitor.mp4", "open_mouth", False),
    ("tran_replay_monitor.mp4", "look_up,turn_left", False),
]


@pytest.mark.parametrize("clip,challenge,live", CASES)
def test_challenge_passes_only_when_the_clip_does_it_in_order(clip: str, challenge: str, live: bool) -> None:
    result = check_challenge(tracked(clip), parse_challenge(challenge), UNTIMED)
    assert result.is_live is live, (result.reasons, result.actions, result.planarity)
    if live:
        assert all(a.passed and a.time_s is not None and a.frame_index is not None for a in result.actions)
        times = [a.time_s for a in result.actions]
        assert times == sorted(times)
        # The key frames are the neutral face and one per action: what the device uploads.
        assert [role for role, _ in result.key_frames] == ["neutral", *(a.action.value for a in result.actions)]


def test_head_turns_of_a_real_head_pass_the_3d_test() -> None:
    result = check_challenge(tracked("tran_real_headturns.mp4"), [Action.TURN_RIGHT, Action.TURN_LEFT], UNTIMED)
    assert result.planarity is not None and result.planarity.verdict.value == "3d"
    assert result.planarity.depth is not None and result.planarity.depth > 1.5 * result.planarity.threshold


def test_actions_are_timed_from_the_readme_timeline() -> None:
    result = check_challenge(tracked("tran_real_headturns.mp4"), [Action.TURN_RIGHT, Action.TURN_LEFT,
                                                                   Action.LOOK_UP], UNTIMED)
    right, left, up = (a.time_s for a in result.actions)
    assert right is not None and 2.0 <= right <= 5.8
    assert left is not None and 7.4 <= left <= 10.5
    assert up is not None and 14.4 <= up <= 16.4


def test_a_time_limit_per_action_is_enforced() -> None:
    # The left turn starts about 4.7 s after the right one is done: a 3 s limit fails it, 6 s passes it.
    track = tracked("tran_real_headturns.mp4")
    strict = EngineSettings(challenge_action_timeout_s=3.0)
    assert not check_challenge(track, [Action.TURN_RIGHT, Action.TURN_LEFT], strict).is_live
    assert check_challenge(track, [Action.TURN_RIGHT, Action.TURN_LEFT],
                           EngineSettings(challenge_action_timeout_s=8.0)).is_live


@pytest.mark.parametrize("clip", ["tran_replay_monitor.mp4", "short_hamilton_clip.mp4", "facenet_pytorch_video.mp4",
                                  "liveportrait_d13_talking_blinks.mp4"])
def test_a_replayed_clip_does_not_follow_random_server_challenges(clip: str) -> None:
    """As a device sees a replay started when the task arrives: a fresh random challenge, 6 s per action."""
    rng = random.Random(15)
    track = tracked(clip)
    timed = EngineSettings()
    passed = [c for c in (draw_challenge(rng, 2) for _ in range(40)) if check_challenge(track, c, timed).is_live]
    # A clip passes only what it happens to do, in that order, at the prompt's pace: at most 1 in 10 here.
    assert len(passed) <= 4, passed


def test_a_clip_of_a_still_photo_shows_no_sign_of_life_to_a_bed_camera() -> None:
    result = check_motion(tracked("lestari_photo_on_phone.mp4"), UNTIMED)
    assert not result.is_live and "liveness_not_established" in result.reasons


def test_a_talking_patient_shows_signs_of_life_to_a_bed_camera() -> None:
    result = check_motion(tracked("liveportrait_d13_talking_blinks.mp4"), UNTIMED)
    assert result.is_live, result.reasons


def test_passive_cues_cannot_fail_a_challenge_that_was_done() -> None:
    """The passive cues only lower the score a little: the worst passive score leaves a done challenge live."""
    track = tracked("tran_real_headturns.mp4")
    result = check_challenge(track, [Action.TURN_RIGHT], UNTIMED, passive_score=0.0,
                             cues={"frame": 1.0, "moire": 1.0, "flatness": 1.0, "colour": 1.0})
    assert result.is_live and result.score >= 0.5, (result.reasons, result.score)


@pytest.mark.parametrize("clip,contains", [
    # What each clip does, in order, from its README (head actions only: blinks and mouths are spontaneous).
    ("tran_replay_monitor.mp4", ["turn_right", "turn_left", "look_down", "look_up"]),
    ("liveportrait_d13_talking_blinks.mp4", []),
    ("lestari_photo_on_phone.mp4", []),
])
def test_a_replay_never_passes_a_challenge_it_was_not_made_for(clip: str, contains: list[str]) -> None:
    """Every two-action challenge the server can draw, judged as a device would (6 s per action, from the
    start of the replay): one that asks for a head action the clip does not do next, in that order, fails."""
    track = tracked(clip)
    timed = EngineSettings()
    for first in Action:
        for second in Action:
            if first == second or not {first, second} & HEAD_ACTIONS:
                continue  # the server never draws these (draw_challenge)
            made_for = _in_order([a.value for a in (first, second) if a in HEAD_ACTIONS], contains)
            if not made_for:
                result = check_challenge(track, [first, second], timed)
                assert not result.is_live, (clip, first, second, result.actions)


def _in_order(wanted: list[str], done: list[str]) -> bool:
    """Whether the head actions `wanted` appear in `done` in that order (a subsequence)."""
    it = iter(done)
    return all(any(w == d for d in it) for w in wanted)
