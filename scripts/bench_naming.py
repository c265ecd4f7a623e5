"""Open-set naming (who is the face in the bed?) on a gallery of more than 500 people built from the dev sets.

    .venv/bin/python scripts/bench_naming.py [--faces DIR] [--engine sface|dlib] [--workers 2]

Identities: lfw_dev/images (844 names), asian_dev/images (29) and people/ (10, those not already in lfw_dev).
Every identity with two or more photos is enrolled with up to three of them and probed with its last one;
of the identities with one photo, `--single-enrolled` are enrolled (no probe) to make the gallery larger and
the rest are never enrolled and probed as strangers. Each probe stands in a bed billed to another enrolled
person (excluded from the search, as the evidence check excludes the billed person), and is searched exactly
as server/evidence names an impersonator: candidates within the 1:1 threshold, `identify` under the
identification threshold for the gallery's size and the engine's naming margin (models/faces/match.py).

Prints, per engine: strangers named nobody (goal >= 99 %), enrolled impostors named right first (goal >= 95 %),
enrolled impostors named wrong (an innocent person named: the error that matters most). Encodings are cached
in the temp dir per engine. Never asserts.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.faces.engines import identification_threshold  # noqa: E402
from models.faces.match import Embeddings, distances, identify  # noqa: E402
from models.settings import EngineSettings  # noqa: E402

_engine = None


def _init(name: str) -> None:
    global _engine
    from models.faces.engine import FaceEngine

    _engine = FaceEngine(EngineSettings.load(engine=name))


def _encode(path: str) -> tuple[str, list[float] | None]:
    from models.faces.decode import load_image_file

    assert _engine is not None
    try:
        found = _engine.encode_largest(load_image_file(Path(path), _engine.settings), thorough=True)
    except Exception:  # noqa: BLE001 - an unreadable photo is a face not found, as in `faces eval`
        found = None
    return path, None if found is None else [float(x) for x in found]


def identities(faces: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for root in (faces / "lfw_dev" / "images", faces / "asian_dev" / "images", faces / "people"):
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            key = folder.name.lower()
            if key not in found:  # people/ repeats some LFW names: one identity, never two
                found[key] = sorted(folder.glob("*.jpg"))
    return found


def encodings(name: str, paths: list[Path], workers: int) -> dict[str, np.ndarray]:
    cache = Path(tempfile.gettempdir()) / f"bedcheck_naming_{name}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        return {k: stored[k] for k in stored.files}
    found: dict[str, np.ndarray] = {}
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(name,)) as pool:
        for done, (path, vector) in enumerate(pool.map(_encode, [str(p) for p in paths], chunksize=8), start=1):
            if vector is not None:
                found[path] = np.asarray(vector)
            if done % 200 == 0:
                print(f"  {name}: {done}/{len(paths)} photos encoded", file=sys.stderr)
    np.savez(cache, **found)
    return found


def run(name: str, faces: Path, workers: int, single_enrolled: int, seed: int) -> None:
    settings = EngineSettings.load(engine=name)
    engine = settings.profile_of()
    people = identities(faces)
    vectors = encodings(name, [p for photos in people.values() for p in photos], workers)
    encoded = {who: [vectors[str(p)] for p in photos if str(p) in vectors] for who, photos in people.items()}
    rng = random.Random(seed)
    singles = sorted(who for who, v in encoded.items() if len(v) == 1)
    rng.shuffle(singles)
    gallery: dict[str, Embeddings] = {}
    probes: list[tuple[str | None, np.ndarray]] = []  # (enrolled identity or None for a stranger, probe)
    for who, own in sorted(encoded.items()):
        if len(own) >= 2:
            gallery[who] = Embeddings.of(engine.tag, np.stack(own[:min(3, len(own) - 1)]))
            probes.append((who, own[-1]))
    for who in singles[:single_enrolled]:
        gallery[who] = Embeddings.of(engine.tag, np.stack(encoded[who]))
    probes += [(None, encoded[who][0]) for who in singles[single_enrolled:]]
    size = len(gallery)
    threshold = identification_threshold(engine, size, stranger_named_rate=settings.naming_stranger_rate)
    names = sorted(gallery)
    counts = {"stranger": 0, "stranger_named": 0, "enrolled": 0, "right_first": 0, "wrong": 0, "abstained": 0}
    for truth, vector in probes:
        billed = rng.choice([n for n in names if n != truth])  # the bed's insured person, never searched
        probe = Embeddings.of(engine.tag, vector)
        # As the evidence check: persons with a photo within the 1:1 threshold are the candidates.
        candidates = {who: e for who, e in gallery.items()
                      if who != billed and float(np.min(distances(e, probe))) <= engine.match}
        named = identify(candidates, probe, threshold=threshold, margin=engine.naming_margin).named
        if truth is None:
            counts["stranger"] += 1
            counts["stranger_named"] += named is not None
        else:
            counts["enrolled"] += 1
            counts["right_first"] += named == truth
            counts["wrong"] += named is not None and named != truth
            counts["abstained"] += named is None
    missing = sum(len(p) for p in people.values()) - len(vectors)
    print(f"{name} ({engine.tag}): gallery {size} people, identification threshold {threshold:.4f} "
          f"(1:1 {engine.match}), margin {engine.naming_margin}; {missing} photos without a face")
    print(f"  strangers (never enrolled) named nobody: {counts['stranger'] - counts['stranger_named']}/"
          f"{counts['stranger']} = {1 - counts['stranger_named'] / counts['stranger']:.2%}")
    print(f"  enrolled impostors named right first:   {counts['right_first']}/{counts['enrolled']} = "
          f"{counts['right_first'] / counts['enrolled']:.2%} (wrong person named {counts['wrong']}, "
          f"abstained {counts['abstained']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_faces = Path(os.environ.get("BEDCHECK_FACES_DIR", Path(__file__).resolve().parents[2] / "shared/faces"))
    parser.add_argument("--faces", type=Path, default=default_faces)
    parser.add_argument("--engine", choices=["sface", "dlib"], action="append")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--single-enrolled", type=int, default=200,
                        help="identities with one photo that are enrolled (the rest are the strangers)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    for name in args.engine or ["sface", "dlib"]:
        run(name, args.faces, args.workers, args.single_enrolled, args.seed)


if __name__ == "__main__":
    main()
