"""The challenge vocabulary: actions, the nurse's prompts, parsing and the server's random draw.

Plain Python (no image libraries), so the wire schemas, the server and the CLI can share it.

Directions are in image coordinates of the upright frame: `turn_left` is the nose moving towards the image's
left edge. The device maps the nurse's prompt to what its camera shows (`prompt_for`).
"""

from __future__ import annotations

import hashlib
import hmac
import random
from enum import StrEnum


class Action(StrEnum):
    BLINK = "blink"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    LOOK_UP = "look_up"
    LOOK_DOWN = "look_down"
    OPEN_MOUTH = "open_mouth"


HEAD_ACTIONS = frozenset({Action.TURN_LEFT, Action.TURN_RIGHT, Action.LOOK_UP, Action.LOOK_DOWN})
FACE_ACTIONS = frozenset({Action.BLINK, Action.OPEN_MOUTH})


class LivenessMethod(StrEnum):
    CHALLENGE = "challenge"                # the patient followed the task's challenge (tablet)
    MOTION = "motion"                      # a fixed bed camera watched for signs of life
    CANNOT_TAKE_PART = "cannot_take_part"  # the nurse recorded why the patient cannot (reviewed, never verified)
    SIMULATED = "simulated"                # demo and test devices without real faces: refused in production
    NONE = "none"                          # no liveness evidence (older devices)


class CannotTakePart(StrEnum):
    UNCONSCIOUS = "unconscious"
    SEDATED = "sedated"
    INFANT = "infant"
    FACE_COVERED = "face_covered"   # dressings, oxygen mask
    CANNOT_MOVE = "cannot_move"     # paralysis, neck brace
    OTHER = "other"


# What the nurse's screen says. A turn is named from the patient's own point of view, so which image
# direction it is depends on whether the camera's frames are mirrored (see `prompt_for`).
PROMPTS_ZH = {
    Action.BLINK: "请眨眼", Action.LOOK_UP: "请抬头", Action.LOOK_DOWN: "请低头", Action.OPEN_MOUTH: "请张嘴",
}
_TURN_ZH = {"left": "请向左转头", "right": "请向右转头"}
CANNOT_TAKE_PART_ZH = {
    CannotTakePart.UNCONSCIOUS: "昏迷", CannotTakePart.SEDATED: "镇静中", CannotTakePart.INFANT: "婴幼儿",
    CannotTakePart.FACE_COVERED: "面部遮挡（敷料、面罩）", CannotTakePart.CANNOT_MOVE: "无法活动",
    CannotTakePart.OTHER: "其他",
}


def prompt_for(action: Action, *, mirrored: bool) -> str:
    """The Chinese prompt for an action given in image coordinates.

    A camera facing the patient shows the patient's own left on the image's right; a mirrored image (as
    many front cameras deliver it) shows it on the left.
    """
    if action in (Action.TURN_LEFT, Action.TURN_RIGHT):
        image_left = action == Action.TURN_LEFT
        return _TURN_ZH["left" if image_left == mirrored else "right"]
    return PROMPTS_ZH[action]


def parse_challenge(text: str) -> list[Action]:
    """`blink,turn_left` -> actions in order; raises ValueError naming an unknown action."""
    actions = []
    for name in (part.strip() for part in text.split(",")):
        if not name:
            continue
        try:
            actions.append(Action(name))
        except ValueError as e:
            allowed = ", ".join(a.value for a in Action)
            raise ValueError(f"unknown action {name!r}; use {allowed}") from e
    if not actions:
        raise ValueError("the challenge names no action")
    return actions


def draw_challenge(rng: random.Random, length: int) -> list[Action]:
    """A random sequence of at least two distinct actions: one moves the head (the 3-D test needs one) and one
    moves the face (a blink or an open mouth: what a print cannot do, however it is turned or bent).

    Never fewer than two (issue 25): a blink is in every recording of a person, so one action alone is something a
    recording contains by chance; the drawn prompt times (`prompt_schedule`) are the rest of what it cannot know.
    The server passes `secrets.SystemRandom()`: a device cannot know a task's challenge before it arrives.
    """
    length = max(2, min(length, len(Action)))
    actions = [rng.choice(sorted(HEAD_ACTIONS))]
    if length >= 2:
        actions.append(rng.choice(sorted(FACE_ACTIONS)))
    actions += rng.sample([a for a in Action if a not in actions], length - len(actions))
    rng.shuffle(actions)
    return actions


# When each prompt is shown, seconds after the session's first frame: drawn per task, like the actions, so a
# recording made before the task cannot have its actions at the right moments. The first prompt leaves time for
# the neutral face; each action's response window (`RESPONSE_WINDOW_S`) ends before the next prompt.
FIRST_PROMPT_S = (1.0, 2.0)
PROMPT_GAP_S = (3.5, 4.5)
RESPONSE_WINDOW_S = 3.2
# How far a device's reported prompt time may lie from the drawn one (a screen's frame, a busy tablet).
PROMPT_TOLERANCE_S = 0.35


def prompt_schedule(nonce: str, count: int) -> list[float]:
    """The drawn prompt times of a task's `count` actions (seconds after the session's first frame).

    Derived from the task's nonce (server-drawn, 128 bits, unknown before the task arrives): the device and the
    server compute the same schedule without another stored column, and nobody can choose it.
    """
    digest = hmac.new(b"bedcheck-prompt-schedule", nonce.encode("utf-8"), hashlib.sha256).digest()
    fractions = [int.from_bytes(digest[2 * i:2 * i + 2], "big") / 65535.0 for i in range(max(count, 0))]
    times: list[float] = []
    for i, fraction in enumerate(fractions):
        low, high = FIRST_PROMPT_S if i == 0 else PROMPT_GAP_S
        times.append(round((times[-1] if times else 0.0) + low + (high - low) * fraction, 2))
    return times
