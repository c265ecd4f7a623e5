"""Verification accuracy on LFW-format pairs files, and threshold calibration for a target false-accept rate.

pairs.txt layout: an optional header line (`folds<TAB>pairs_per_fold` or a single count), then matched lines
`name<TAB>i<TAB>j` and mismatched lines `name1<TAB>i<TAB>name2<TAB>j`; image i of `name` is
`DIR/name/name_000i.jpg`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import InvalidInput


@dataclass(frozen=True)
class Pair:
    left: str   # path relative to the images directory
    right: str
    same: bool


@dataclass(frozen=True)
class Scored:
    pair: Pair
    distance: float | None  # None: a face was not found in one of the images


def lfw_path(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


_YES = {"1", "yes", "true", "same", "y"}
_NO = {"0", "no", "false", "different", "n"}


def read_pairs(path: Path) -> list[Pair]:
    """Parse an LFW pairs file or a CSV of labelled pairs; a malformed line is an InvalidInput naming its line."""
    if path.suffix.lower() == ".csv":
        return _read_csv_pairs(path)
    pairs: list[Pair] = []
    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        if line_no == 1 and all(f.isdigit() for f in fields) and len(fields) <= 2:
            continue  # header
        if len(fields) == 3 and fields[1].isdigit() and fields[2].isdigit():
            pairs.append(Pair(lfw_path(fields[0], fields[1]), lfw_path(fields[0], fields[2]), True))
        elif len(fields) == 4 and fields[1].isdigit() and fields[3].isdigit():
            pairs.append(Pair(lfw_path(fields[0], fields[1]), lfw_path(fields[2], fields[3]), False))
        else:
            raise InvalidInput(f"{path.name} line {line_no}: not an LFW pair line", line=line_no)
    if not pairs:
        raise InvalidInput(f"{path.name}: no pairs found")
    return pairs


def _read_csv_pairs(path: Path) -> list[Pair]:
    """A site's own labelled pairs: a header naming `left,right,same` (or deepface's `file_x,file_y,Decision`)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise InvalidInput(f"{path.name}: no pairs found")
    header = [h.strip().lower() for h in rows[0]]
    try:
        left, right, same = (next(header.index(n) for n in names if n in header)
                             for names in (("left", "file_x"), ("right", "file_y"), ("same", "decision")))
    except StopIteration as e:
        raise InvalidInput(f"{path.name} line 1: the header needs left,right,same columns", line=1) from e
    pairs = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        label = row[same].strip().lower() if len(row) > max(left, right, same) else ""
        if label not in _YES | _NO:
            raise InvalidInput(f"{path.name} line {line_no}: not a labelled pair", line=line_no)
        pairs.append(Pair(row[left].strip(), row[right].strip(), label in _YES))
    if not pairs:
        raise InvalidInput(f"{path.name}: no pairs found")
    return pairs


@dataclass(frozen=True)
class Rates:
    threshold: float
    accuracy: float
    false_accept_rate: float
    false_reject_rate: float
    errors: int
    faces_not_found: int


def rates_at(scored: Iterable[Scored], threshold: float) -> Rates:
    """Accuracy, FAR and FRR; a pair with a face not found counts as an error (a false reject or accept)."""
    scored = list(scored)
    same = [s for s in scored if s.pair.same]
    diff = [s for s in scored if not s.pair.same]
    missing = sum(1 for s in scored if s.distance is None)
    false_reject = sum(1 for s in same if s.distance is None or s.distance > threshold)
    false_accept = sum(1 for s in diff if s.distance is None or s.distance <= threshold)
    errors = false_reject + false_accept
    return Rates(
        threshold=threshold,
        accuracy=1.0 - errors / len(scored) if scored else 0.0,
        false_accept_rate=false_accept / len(diff) if diff else 0.0,
        false_reject_rate=false_reject / len(same) if same else 0.0,
        errors=errors,
        faces_not_found=missing,
    )


def candidate_thresholds(scored: Iterable[Scored]) -> np.ndarray:
    found = sorted({round(s.distance, 4) for s in scored if s.distance is not None})
    return np.asarray(found or [0.5])


def best_threshold(scored: list[Scored]) -> Rates:
    """The threshold with the highest accuracy (ties: the lower FAR)."""
    options = [rates_at(scored, float(t)) for t in candidate_thresholds(scored)]
    return max(options, key=lambda r: (r.accuracy, -r.false_accept_rate))


def calibrate(scored: list[Scored], target_far: float) -> Rates:
    """The largest threshold whose false-accept rate stays at or below `target_far` (fewest rejects)."""
    allowed = [r for r in (rates_at(scored, float(t)) for t in candidate_thresholds(scored))
               if r.false_accept_rate <= target_far]
    if not allowed:
        raise InvalidInput(f"no threshold reaches a false-accept rate of {target_far}")
    return max(allowed, key=lambda r: r.threshold)


def roc_points(scored: list[Scored]) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) over all thresholds, for a plot."""
    thresholds = candidate_thresholds(scored)
    rates = [rates_at(scored, float(t)) for t in thresholds]
    return (np.array([r.false_accept_rate for r in rates]), np.array([1 - r.false_reject_rate for r in rates]))
