"""Templates and fused probes: decide from several images, not one photo against one photo.

A person's enrolled faces of one engine form a **template**: the mean of their embeddings, for SFace (whose
distances are between unit vectors) of their unit-length embeddings, scaled to unit length again. A capture's
frames that pass the quality gates (the crop and each action's key frame) form one **fused probe** the same way.
The distance is the Euclidean distance between the two (for SFace, sqrt(2 - 2 cos)); each engine's threshold for
it is `EngineProfile.match` (models/faces/engines.py, fitted with `bedcheck faces eval --protocol templates`).

Why the mean of unit vectors: each photo's own pose, light and expression is noise around the person; the mean
cancels part of it, for the enrolled side and the probe alike. Measured on the dev sets (docs/benchmarks.md)
with two enrolled photos against two or three probe images, it lowers genuine distances far more than impostor
ones. Weights (`template_of(..., weights=)`) let a caller count a face less; equal weights are what was measured.

**Who may join a template** (`may_join`). A verified capture could keep a template fresh (an elderly patient
changes over a long stay), but an impostor who is verified once, near the threshold, could then pull the
template towards their own face, capture by capture, until they match comfortably (template drift). The rules:
1. The **anchor** - the faces enrolled from photos at the desk or by `bedcheck enroll` - never changes through
   captures, and every candidate is measured against the anchor, not against the template it would join:
   the distance a capture may be from the anchor does not grow as captures join.
2. The candidate must lie within `join_distance` of the anchor, much stricter than the match threshold (the
   engine's `template_join`, a genuine median): a capture near the threshold is verified, never joined.
3. Captures together weigh at most as much as the anchor (`max_captures`, each weighing one photo and at most
   as many as the anchor has photos; the oldest leaves first), so the template stays nearer the anchor than any
   capture.
4. Only a capture the server verified itself, with liveness re-checked from its key frames, joins (the caller
   states it: `server_verified`); a device's word never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]


def unit_rows(vectors: NDArray[np.floating] | Sequence[Sequence[float]]) -> NDArray[np.float64]:
    """Each row scaled to unit length (a zero row stays zero)."""
    array = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.asarray(array / np.where(norms > 0, norms, 1.0), dtype=np.float64)


def template_of(vectors: NDArray[np.floating] | Sequence[Sequence[float]],
                weights: Sequence[float] | None = None, *, unit: bool = True) -> Vector:
    """The weighted mean of embeddings (one row each); a ValueError when empty.

    `unit`: for an engine whose distances are between unit vectors (SFace), each embedding is scaled to unit
    length and so is the mean; otherwise (dlib, whose distances are on its vectors as made) the plain mean.
    """
    rows = unit_rows(vectors) if unit else np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if rows.shape[0] == 0 or rows.size == 0:
        raise ValueError("a template needs at least one embedding")
    w = np.ones(rows.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (rows.shape[0],) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("one non-negative weight per embedding, not all zero")
    mean = (rows * w[:, None]).sum(axis=0) / w.sum()
    if not unit:
        return np.asarray(mean, dtype=np.float64)
    norm = float(np.linalg.norm(mean))
    return np.asarray(mean / norm if norm > 0 else mean, dtype=np.float64)


def template_distance(template: Vector, probe: Vector) -> float:
    """Euclidean distance between a template and a probe (lower = closer)."""
    return float(np.linalg.norm(np.asarray(template, dtype=np.float64) - np.asarray(probe, dtype=np.float64)))


@dataclass(frozen=True)
class FrameScore:
    """One frame of a capture as the fused probe saw it."""

    role: str  # "crop", "neutral", or the action the key frame shows
    distance: float | None  # to the template; None when the frame gave no face
    used: bool
    reason: str  # "used" | "no_face" | "quality" | "disagrees" (farther than `agreement` from the crop)


@dataclass(frozen=True)
class FusedProbe:
    vector: Vector | None  # unit length; None when no frame gave a usable face
    frames: tuple[FrameScore, ...]

    @property
    def used(self) -> int:
        return sum(1 for f in self.frames if f.used)


@dataclass(frozen=True)
class Frame:
    """A frame's embedding as the server made it, or why there is none (`reason`: no_face, quality)."""

    role: str
    vector: Sequence[float] | NDArray[np.floating] | None
    reason: str = "used"


def fuse_probe(frames: Sequence[Frame], template: Vector | None, *, agreement: float,
               unit: bool = True) -> FusedProbe:
    """The mean of the frames' unit embeddings that show the crop's face, with each frame's distance.

    The first frame with a face leads (the crop: the image the device says is the patient); a frame farther
    than `agreement` from it shows someone else or a bad detection and is left out, as in a burst
    (models/faces/match.fuse_burst); whether one person stayed in front of the camera all along is the
    capture session's own check. `template` (None: no enrolment) only adds each frame's distance as evidence.
    """
    usable = [(i, template_of(np.asarray(f.vector, dtype=np.float64), unit=unit)) for i, f in enumerate(frames)
              if f.vector is not None and f.reason == "used"]
    lead = usable[0][1] if usable else None
    scores: list[FrameScore] = []
    chosen: list[Vector] = []
    vectors = dict(usable)
    for i, frame in enumerate(frames):
        vector = vectors.get(i)
        distance = None if vector is None or template is None else template_distance(template, vector)
        if vector is None:
            scores.append(FrameScore(frame.role, None, False, frame.reason if frame.reason != "used" else "no_face"))
        elif lead is not None and template_distance(lead, vector) > agreement:
            scores.append(FrameScore(frame.role, distance, False, "disagrees"))
        else:
            chosen.append(vector)
            scores.append(FrameScore(frame.role, distance, True, "used"))
    return FusedProbe(template_of(np.stack(chosen), unit=unit) if chosen else None, tuple(scores))


@dataclass(frozen=True)
class Member:
    """A face of a template: enrolled from a photo (the anchor) or joined from a verified capture."""

    vector: Vector
    from_capture: bool = False


def template_with_captures(members: Sequence[Member], *, max_captures: int, unit: bool = True) -> Vector:
    """The template of the anchor's photos and at most `max_captures` (the newest, last in `members`) captures,
    the captures never more than the photos."""
    photos = [m.vector for m in members if not m.from_capture]
    if not photos:
        raise ValueError("a template needs at least one enrolled photo")
    captures = [m.vector for m in members if m.from_capture][::-1][:min(max_captures, len(photos))]
    return template_of(np.stack([*photos, *captures]), unit=unit)


@dataclass(frozen=True)
class JoinDecision:
    joins: bool
    distance_to_anchor: float
    reason: str  # "joins" | "not_server_verified" | "far_from_anchor"


def may_join(anchor: Vector, capture: Vector, *, join_distance: float, server_verified: bool) -> JoinDecision:
    """Whether a capture may join its person's template (rules 1, 2 and 4 of the module docstring; rule 3 is
    `template_with_captures`). `anchor`: the template of the enrolled photos only; `capture`: the fused probe,
    both as `template_of` makes them for the engine."""
    distance = template_distance(anchor, capture)
    if not server_verified:
        return JoinDecision(False, distance, "not_server_verified")
    if distance > join_distance:
        return JoinDecision(False, distance, "far_from_anchor")
    return JoinDecision(True, distance, "joins")


def candidate_radius(threshold: float, *, unit: bool = True, coherence: float = 0.7) -> float:
    """How near a probe one enrolled photo must be for its person's template to be within `threshold`: what a
    1:N search over single photos (faiss) must look within so that no person who matches is missed.

    Unit vectors (t the template, the mean m of the photos scaled; p the probe): the nearest photo has
    p.u >= p.m = |m| (p.t) >= |m| cos(threshold). `coherence` bounds |m| from below: two photos of one person at
    the dev sets' largest genuine distance still give |m| > 0.8; 0.7 would need photos as far apart as strangers.
    Plain means: the mean squared distance of the photos to p is their spread about m plus |m - p|^2; with the
    spread taken as at most the threshold itself, one photo lies within threshold * sqrt(2).
    """
    if not unit:
        return float(threshold * np.sqrt(2.0))
    cos = 1.0 - threshold * threshold / 2.0
    if cos <= 0:
        return 2.0
    return float(min(2.0, np.sqrt(max(0.0, 2.0 - 2.0 * coherence * cos))))
