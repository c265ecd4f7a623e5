"""The verdict rule. The server decides with its own threshold and the enrolled embeddings it holds; the
device's own distance is kept as evidence but never trusted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.faces.match import person_distance
from models.verdicts import CaptureOutcome, Verdict
from models.wire import ResultUpload


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    distance: float | None
    reason: str


def decide(upload: ResultUpload, enrolled: np.ndarray | None, threshold: float) -> Decision:
    """verified | absent | impersonated | spoof | unrecognised, from what the device saw at the bed."""
    if upload.outcome in (CaptureOutcome.BED_EMPTY, CaptureOutcome.NO_FACE):
        return Decision(Verdict.ABSENT, None, upload.outcome.value)
    if upload.outcome == CaptureOutcome.SPOOF or (upload.liveness is not None and not upload.liveness.is_live):
        return Decision(Verdict.SPOOF, None, "liveness_failed")
    if enrolled is None or len(enrolled) == 0:
        return Decision(Verdict.UNRECOGNISED, None, "nobody_enrolled")
    distance = person_distance(enrolled, np.asarray(upload.embedding, dtype=np.float64))
    if distance <= threshold:
        return Decision(Verdict.VERIFIED, distance, "match")
    return Decision(Verdict.IMPERSONATED, distance, "no_match")
