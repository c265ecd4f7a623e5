"""The matching rule, in one place: the bed check, the evidence check, duplicate identity and naming the
impostor all compare faces through `person_distance`, and 1:N naming through `identify`.

Distance: Euclidean between embeddings of one engine (lower = closer; models/faces/engines.py). A person
with several enrolled photos is compared through their template, and a probe of several frames through its
fused vector (models/faces/templates.py): the distance between the two unit-length means. Embeddings carry the
tag of the engine that made them; two engines' embeddings are never compared (EngineMismatch).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from models.faces.engines import UNIT_LENGTH_TAGS, require_same_engine
from models.faces.templates import template_distance, template_of

Encoding = NDArray[np.float64]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Embeddings:
    """One or more embeddings of one engine: `vectors` (n, 128) and the engine's tag."""

    engine: str
    vectors: NDArray[np.float64]

    @classmethod
    def of(cls, engine: str, vectors: NDArray[np.floating] | list[list[float]] | list[float]) -> Embeddings:
        array = np.asarray(vectors, dtype=np.float64)
        return cls(engine, array.reshape(-1, array.shape[-1]) if array.size else np.zeros((0, 128)))

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


@dataclass(frozen=True)
class MatchResult:
    distance: float
    is_match: bool
    threshold: float


def distances(enrolled: Embeddings, probe: Embeddings) -> NDArray[np.float64]:
    """Distance from the probe's first embedding to each enrolled one (EngineMismatch across engines)."""
    require_same_engine(enrolled.engine, probe.engine)
    if len(enrolled) == 0 or len(probe) == 0:
        return np.zeros(0, dtype=np.float64)
    return np.asarray(np.linalg.norm(enrolled.vectors - probe.vectors[0], axis=1), dtype=np.float64)


def person_distance(enrolled: Embeddings, probe: Embeddings) -> float:
    """Distance from a probe (one or several frames of one capture) to a person (one or several enrolled faces):
    between the person's template and the probe's fused vector (models/faces/templates.py).

    An impostor who happens to resemble one enrolment photo has to resemble their mean; and the mean of two
    photos lies nearer the person than either (docs/benchmarks.md, the templates protocol). Infinity when
    nothing is enrolled or the probe is empty.
    """
    require_same_engine(enrolled.engine, probe.engine)
    if len(enrolled) == 0 or len(probe) == 0:
        return float("inf")
    unit = enrolled.engine in UNIT_LENGTH_TAGS
    return template_distance(template_of(enrolled.vectors, unit=unit), template_of(probe.vectors, unit=unit))


def match(enrolled: Embeddings, probe: Embeddings, threshold: float) -> MatchResult:
    """Same person when `person_distance` is within `threshold`."""
    distance = person_distance(enrolled, probe)
    return MatchResult(distance=distance, is_match=distance <= threshold, threshold=threshold)


@dataclass(frozen=True)
class Identification(Generic[K]):
    """The outcome of a 1:N search: `named` is None when the search abstains ("unknown person")."""

    named: K | None
    distance: float  # of the nearest candidate (inf when there was none)
    runner_up_distance: float
    threshold: float
    margin: float
    reason: str  # "named" | "no_candidate" | "above_threshold" | "not_clearly_ahead"

    @property
    def candidates_within(self) -> bool:
        return self.distance <= self.threshold


def rank(gallery: Mapping[K, Embeddings], probe: Embeddings) -> list[tuple[K, float]]:
    """Every candidate person with its `person_distance`, nearest first."""
    ranked = [(key, person_distance(embeddings, probe)) for key, embeddings in gallery.items()]
    return sorted(ranked, key=lambda item: item[1])


def identify(gallery: Mapping[K, Embeddings], probe: Embeddings, *, threshold: float,
             margin: float) -> Identification[K]:
    """Open-set 1:N: name the nearest person only when within `threshold` and `margin` ahead of the next.

    `threshold` is an identification threshold for the gallery's size (engines.identification_threshold),
    not the 1:1 one; `gallery` holds the candidates a search proposed (their full enrolled sets). Naming an
    innocent person in a fraud flag is worse than naming nobody, so a near tie abstains too.
    """
    ranked = rank(gallery, probe)
    if not ranked:
        return Identification(None, float("inf"), float("inf"), threshold, margin, "no_candidate")
    best_key, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else float("inf")
    if best > threshold:
        return Identification(None, best, runner_up, threshold, margin, "above_threshold")
    if runner_up - best < margin:
        return Identification(None, best, runner_up, threshold, margin, "not_clearly_ahead")
    return Identification(best_key, best, runner_up, threshold, margin, "named")


def fuse_burst(encodings: list[Encoding], agreement: float, min_frames: int) -> tuple[Encoding | None, list[int]]:
    """One encoding for a burst: the mean of the frames that agree with the burst's medoid.

    Frames farther than `agreement` from the medoid show someone else (a visitor leaning in) or a bad
    detection and are dropped. Returns (None, []) - abstains - when fewer than `min_frames` agree.
    Returns:
        The fused encoding and the indices of the frames used.
    """
    if not encodings:
        return None, []
    stack = np.stack([np.asarray(e, dtype=np.float64) for e in encodings])
    pairwise = np.linalg.norm(stack[:, None, :] - stack[None, :, :], axis=2)
    medoid = int(np.argmin(pairwise.sum(axis=1)))
    used = [i for i in range(len(encodings)) if pairwise[medoid, i] <= agreement]
    if len(used) < min_frames:
        return None, []
    return stack[used].mean(axis=0), used
