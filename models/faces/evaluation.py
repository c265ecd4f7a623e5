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


# --- the templates protocol ---------------------------------------------------------------------------------
# A bed check compares a template of the enrolled photos with a probe fused from several frames, so that is
# what is measured: over repeated random draws, each identity's images are shuffled, the first K form its
# template and the next (up to) M its probe; identities with fewer than K + 1 images give probes only. Every
# template is compared with every probe (same identity: genuine; other: impostor).


def read_identities(root: Path) -> dict[str, list[Path]]:
    """An LFW-layout folder (`ROOT/<id>/<id>_000N.jpg`, or the same under `ROOT/images/`): images per identity."""
    base = root / "images" if (root / "images").is_dir() else root
    found = {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
             for d in sorted(base.iterdir()) if d.is_dir()}
    found = {name: paths for name, paths in found.items() if paths}
    if not found:
        raise InvalidInput(f"{root}: no identity folders with images (expected DIR/<id>/<id>_0001.jpg)")
    return found


@dataclass(frozen=True)
class TemplateScores:
    """Distances of one protocol run; NaN where a side had no face found in any of its images."""

    genuine: np.ndarray
    impostor: np.ndarray
    templates: int  # per draw
    probes: int  # per draw
    probe_images_mean: float  # images per genuine probe (fewer than M where an identity has too few)


def template_scores(identities: dict[str, list[str]], encodings: dict[str, list[float] | None], *, enroll: int,
                    probe: int, draws: int, seed: int, unit: bool = True) -> TemplateScores:
    """Every template against every probe over `draws` random draws (see the protocol above)."""
    from functools import partial

    from models.faces.templates import template_of as plain_template_of

    template_of = partial(plain_template_of, unit=unit)
    rng = np.random.default_rng(seed)
    genuine: list[np.ndarray] = []
    impostor: list[np.ndarray] = []
    probe_sizes: list[int] = []
    n_templates = n_probes = 0
    for _ in range(draws):
        template_ids: list[str] = []
        template_vectors: list[np.ndarray | None] = []
        probe_ids: list[str] = []
        probe_vectors: list[np.ndarray | None] = []
        for name, paths in identities.items():
            order = [paths[i] for i in rng.permutation(len(paths))]
            if len(order) > enroll:
                template_ids.append(name)
                template_vectors.append(_mean_of(order[:enroll], encodings, template_of))
                probe_images = order[enroll:enroll + probe]
                probe_sizes.append(len(probe_images))
            else:
                probe_images = order[:probe]
            probe_ids.append(name)
            probe_vectors.append(_mean_of(probe_images, encodings, template_of))
        dist = _distance_matrix(template_vectors, probe_vectors)
        same = np.array(template_ids)[:, None] == np.array(probe_ids)[None, :]
        genuine.append(dist[same])
        impostor.append(dist[~same])
        n_templates, n_probes = len(template_ids), len(probe_ids)
    return TemplateScores(np.concatenate(genuine), np.concatenate(impostor), n_templates, n_probes,
                          float(np.mean(probe_sizes)) if probe_sizes else 0.0)


def _mean_of(paths: list[str], encodings: dict[str, list[float] | None], template_of) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    found = [encodings[p] for p in paths if encodings.get(p) is not None]
    return template_of(np.asarray(found, dtype=np.float64)) if found else None


def _distance_matrix(left: list[np.ndarray | None], right: list[np.ndarray | None]) -> np.ndarray:
    """Euclidean distances; NaN where either side is None."""
    dim = next((v.shape[0] for v in [*left, *right] if v is not None), 1)
    a = np.stack([v if v is not None else np.full(dim, np.nan) for v in left])
    b = np.stack([v if v is not None else np.full(dim, np.nan) for v in right])
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.asarray(np.sqrt(np.clip(squared, 0.0, None)), dtype=np.float64)


@dataclass(frozen=True)
class OperatingPoint:
    target_far: float
    threshold: float  # the largest distance whose FAR stays at or below the target
    true_accept_rate: float
    false_accept_rate: float


def tar_at_far(scores: TemplateScores, target_far: float) -> OperatingPoint:
    """TAR at the largest threshold whose FAR is at most `target_far`. A comparison with no face found is an
    error on either side: a genuine one is never accepted, an impostor one counts as accepted."""
    impostor = scores.impostor
    missing = int(np.isnan(impostor).sum())
    found = np.sort(impostor[~np.isnan(impostor)])
    allowed = int(np.floor(target_far * impostor.size + 1e-9)) - missing
    if allowed < 0 or found.size == 0:
        threshold = float(found[0]) - 1e-6 if found.size else 0.0
    else:
        # Accept at most `allowed` impostors: just under the (allowed+1)-th smallest impostor distance.
        threshold = float(found[allowed]) - 1e-6 if allowed < found.size else float(found[-1])
    return OperatingPoint(target_far, threshold, *_rates(scores, threshold))


def rates_at_threshold(scores: TemplateScores, threshold: float) -> dict[str, float | int]:
    """TAR, FAR and accuracy at one threshold, a face not found counted as an error."""
    tar, far = _rates(scores, threshold)
    total = scores.genuine.size + scores.impostor.size
    errors = (1 - tar) * scores.genuine.size + far * scores.impostor.size
    return {"threshold": threshold, "true_accept_rate": tar, "false_accept_rate": far,
            "accuracy": 1 - errors / total if total else 0.0, "genuine": int(scores.genuine.size),
            "impostor": int(scores.impostor.size),
            "faces_not_found": int(np.isnan(scores.genuine).sum() + np.isnan(scores.impostor).sum())}


def _rates(scores: TemplateScores, threshold: float) -> tuple[float, float]:
    genuine, impostor = scores.genuine, scores.impostor
    with np.errstate(invalid="ignore"):
        tar = float(np.sum(genuine <= threshold)) / genuine.size if genuine.size else 0.0
        accepted = np.sum(impostor <= threshold) + np.isnan(impostor).sum()
    return tar, float(accepted) / impostor.size if impostor.size else 0.0
