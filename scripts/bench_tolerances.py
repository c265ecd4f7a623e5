"""Measures, per face engine, the distances the evidence check and enrollment rules are set from.

    python scripts/bench_tolerances.py --faces ../shared/faces [--engine sface|dlib]

- crop re-encoding: a device fuses a burst into an embedding and uploads a 256 px JPEG crop; the server
  re-encodes the crop (FaceEngine.encode_crop). Their distance bounds `tamper_tolerance` from below.
- same photo vs different photos of one person: `replay_max_distance` must sit between the JPEG re-encoding
  of one picture and two different pictures of the same person.
- genuine and impostor person distances (3 photos enrolled, the others probed) on people/ and asian_dev.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.faces import crop_to_jpeg  # noqa: E402
from models.faces.decode import decode_image, load_image_file  # noqa: E402
from models.faces.engine import FaceEngine  # noqa: E402
from models.settings import EngineSettings  # noqa: E402


def _identities(root: Path) -> dict[str, list[Path]]:
    return {p.name: sorted(p.glob("*.jpg")) for p in sorted(root.iterdir()) if p.is_dir()}


def measure(engine: FaceEngine, faces: Path) -> None:
    people = _identities(faces / "people")
    crop_gaps, jpeg_gaps, same_person = [], [], []
    encodings: dict[str, list[np.ndarray]] = {}
    for name, photos in people.items():
        for photo in photos:
            image = load_image_file(photo, engine.settings)
            burst = engine.check_burst([image, image, image])
            if burst.encoding is None or burst.crop_rgb is None:
                continue
            encodings.setdefault(name, []).append(burst.encoding)
            recomputed, _ = engine.encode_crop(decode_image(crop_to_jpeg(burst.crop_rgb), engine.settings))
            crop_gaps.append(float(np.linalg.norm(recomputed - burst.encoding)))
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=70)  # the same picture, re-compressed
            again = engine.encode_largest(decode_image(buffer.getvalue(), engine.settings))
            if again is not None:
                jpeg_gaps.append(float(np.linalg.norm(again - burst.encoding)))
    for vectors in encodings.values():
        same_person += [float(np.linalg.norm(a - b)) for i, a in enumerate(vectors) for b in vectors[i + 1:]]
    q = lambda xs, p: float(np.percentile(xs, p))  # noqa: E731
    print(f"engine {engine.name}: {engine.tag}")
    print(f"  crop re-encoding vs fused burst: median {q(crop_gaps, 50):.3f} p99 {q(crop_gaps, 99):.3f} "
          f"max {max(crop_gaps):.3f} (n={len(crop_gaps)})")
    print(f"  same picture re-compressed (q70): median {q(jpeg_gaps, 50):.3f} max {max(jpeg_gaps):.3f}")
    print(f"  two photos of one person: min {min(same_person):.3f} p1 {q(same_person, 1):.3f} "
          f"median {q(same_person, 50):.3f}")
    for label, root in (("people", faces / "people"), ("asian_dev", faces / "asian_dev" / "images")):
        genuine, impostor = _person_distances(engine, _identities(root))
        print(f"  {label}: genuine person_distance median {q(genuine, 50):.3f} max {max(genuine):.3f}; "
              f"impostor mean {np.mean(impostor):.3f} sd {np.std(impostor):.3f} min {min(impostor):.3f}")


def _person_distances(engine: FaceEngine, identities: dict[str, list[Path]]) -> tuple[list[float], list[float]]:
    vectors = {}
    for name, photos in identities.items():
        found = [engine.encode_largest(load_image_file(p, engine.settings)) for p in photos]
        vectors[name] = [v for v in found if v is not None]
    genuine, impostor = [], []
    for name, own in vectors.items():
        if len(own) < 2:
            continue
        enrolled = np.stack(own[: max(1, len(own) // 2)])
        genuine += [float(np.linalg.norm(enrolled - p, axis=1).mean()) for p in own[len(enrolled):]]
        for other, theirs in vectors.items():
            if other != name:
                impostor += [float(np.linalg.norm(enrolled - p, axis=1).mean()) for p in theirs]
    return genuine, impostor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    parser.add_argument("--engine", choices=["sface", "dlib"], action="append")
    args = parser.parse_args()
    for name in args.engine or ["sface", "dlib"]:
        measure(FaceEngine(EngineSettings(engine=name)), args.faces)


if __name__ == "__main__":
    main()
