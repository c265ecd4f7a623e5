"""Time the dlib primitives bedcheck spends its CPU on, in whichever dlib this interpreter imports.

    .venv/bin/python scripts/bench_dlib.py [--faces DIR] [--count 40] [--repeat 3] [--save enc.npy]
    OTHER_VENV/bin/python scripts/bench_dlib.py --compare enc.npy     # same files, another dlib build

Used to choose between the dlib-bin wheel and dlib built from source (AVX, OpenBLAS, -march=native): it
needs only face_recognition, numpy and Pillow, so it runs in a bare venv holding the other build. Times,
on one core, per 250 px LFW crop from people/: HOG detection (upsample 1), 68 landmarks, one 128-d encoding
with the box given (num_jitters 1); `--compare` prints how far this build's encodings are from a saved
run's (a faster build is no use if it computes something else). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# One core: the figure that matters is CPU per operation; BLAS threads would blur it.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import dlib  # noqa: E402
import face_recognition  # noqa: E402
import numpy as np  # noqa: E402


def timed(fn, items, repeat: int) -> float:  # type: ignore[no-untyped-def]
    fn(items[0])  # warm-up
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        runs.append((time.perf_counter() - start) / len(items) * 1000)
    return statistics.median(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.environ.get("BEDCHECK_FACES_DIR") or str(Path(__file__).resolve().parents[2] / "shared" / "faces")
    p.add_argument("--faces", default=default)
    p.add_argument("--count", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--save", help="write this run's encodings (.npy) for --compare in another build")
    p.add_argument("--compare", help="encodings saved by another build on the same files")
    a = p.parse_args()
    files = sorted((Path(a.faces) / "people").glob("*/*.jpg"))[: a.count]
    if not files:
        sys.exit(f"no images under {a.faces}/people (set --faces or BEDCHECK_FACES_DIR)")
    images = [face_recognition.load_image_file(str(f)) for f in files]
    boxes = [(face_recognition.face_locations(img) or [(0, img.shape[1], img.shape[0], 0)])[0] for img in images]
    pairs = list(zip(images, boxes, strict=True))

    detect_ms = timed(lambda img: face_recognition.face_locations(img), images, a.repeat)
    landmarks_ms = timed(lambda ib: face_recognition.face_landmarks(ib[0], [ib[1]]), pairs, a.repeat)
    encode_ms = timed(lambda ib: face_recognition.face_encodings(ib[0], [ib[1]]), pairs, a.repeat)
    encodings = np.array([face_recognition.face_encodings(img, [box])[0] for img, box in pairs])

    print(f"dlib {dlib.__version__} from {Path(dlib.__file__).parent}")
    flags = ("DLIB_USE_BLAS", "DLIB_USE_LAPACK", "USE_AVX_INSTRUCTIONS", "DLIB_USE_CUDA")
    print("  " + " ".join(f"{flag}={getattr(dlib, flag, '?')}" for flag in flags))
    print(f"  {len(files)} images, median of {a.repeat} runs, one core")
    print(f"  HOG detection (250 px, upsample 1): {detect_ms:7.1f} ms")
    print(f"  68 landmarks, box given:            {landmarks_ms:7.1f} ms")
    print(f"  128-d encoding, box given:          {encode_ms:7.1f} ms")
    if a.save:
        np.save(a.save, encodings)
    if a.compare:
        other = np.load(a.compare)
        diff = np.linalg.norm(encodings - other, axis=1)
        print(f"  distance to the saved encodings: max {diff.max():.2e}, mean {diff.mean():.2e}")


if __name__ == "__main__":
    main()
