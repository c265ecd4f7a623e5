"""The server's random challenge (no faces needed): what every draw must contain."""

from __future__ import annotations

import random

from models.faces.liveness.actions import FACE_ACTIONS, HEAD_ACTIONS, draw_challenge


def test_every_challenge_has_two_actions_or_more_moving_the_head_and_the_face() -> None:
    rng = random.Random(7)
    for length in (1, 2, 3, 4):
        draws = [draw_challenge(rng, length) for _ in range(300)]
        for actions in draws:
            # A single action (a blink is in every recording) is never drawn: at least two (issue 25).
            assert len(actions) == max(2, length) and len(set(actions)) == len(actions)
            assert set(actions) & HEAD_ACTIONS, actions  # the 3-D test needs a head action
            assert set(actions) & FACE_ACTIONS, actions  # what no print can do
        # Random in content and in order: every head action and both face actions come first somewhere.
        assert {a[0] for a in draws} == HEAD_ACTIONS | FACE_ACTIONS


def test_a_challenge_longer_than_the_vocabulary_is_the_whole_vocabulary() -> None:
    assert len(set(draw_challenge(random.Random(1), 99))) == 6


def test_prompt_times_are_drawn_per_task_and_leave_each_action_its_window() -> None:
    from models.faces.liveness.actions import (
        FIRST_PROMPT_S,
        PROMPT_GAP_S,
        RESPONSE_WINDOW_S,
        prompt_schedule,
    )

    schedules = [prompt_schedule(f"nonce-{i}", 3) for i in range(500)]
    assert prompt_schedule("nonce-1", 3) == schedules[1]  # device and server compute the same times
    assert len({tuple(s) for s in schedules}) > 450  # unpredictable without the nonce
    for first, *rest in schedules:
        assert FIRST_PROMPT_S[0] <= first <= FIRST_PROMPT_S[1]
        gaps = [b - a for a, b in zip([first, *rest], rest, strict=False)]
        assert all(PROMPT_GAP_S[0] - 0.01 <= g <= PROMPT_GAP_S[1] + 0.01 for g in gaps)
        assert all(g >= RESPONSE_WINDOW_S for g in gaps)  # windows never overlap the next prompt
