"""Liveness: challenge-response and 3-D motion over a burst (judge.py); passive single-frame cues are only
reported (passive.py). Submodules load lazily: the wire schemas need only `actions`, no image libraries."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PASSIVE = {"LivenessResult", "assess_liveness", "eye_aspect_ratio", "passive_cues"}


def __getattr__(name: str) -> Any:
    if name in _PASSIVE:
        return getattr(import_module("models.faces.liveness.passive"), name)
    raise AttributeError(name)


__all__ = sorted(_PASSIVE)
