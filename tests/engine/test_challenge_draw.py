"""The server's random challenge (no faces needed): what every draw must contain."""

from __future__ import annotations

import random

from models.faces.liveness.actions import FACE_ACTIONS, HEAD_ACTIONS, draw_challenge


def test_every_challenge_moves_the_head_and_from_two_actions_the_face() -> None:
    rng = random.Random(7)
    for length in (1, 2, 3, 4):
        draws = [draw_challenge(rng, length) for _ in range(300)]
        for actions in draws:
            assert len(actions) == length and len(set(actions)) == length
            assert set(actions) & HEAD_ACTIONS, actions  # the 3-D test needs a head action
            if length >= 2:
                assert set(actions) & FACE_ACTIONS, actions  # what no print can do
        # Random in content and in order: every head action and both face actions come first somewhere.
        if length >= 2:
            assert {a[0] for a in draws} == HEAD_ACTIONS | FACE_ACTIONS


def test_a_challenge_longer_than_the_vocabulary_is_the_whole_vocabulary() -> None:
    assert len(set(draw_challenge(random.Random(1), 99))) == 6
