"""Time decode + detect + encode with both bedcheck engines (sface, dlib) against plain face_recognition on
the same files, in one run.

    .venv/bin/python scripts/bench_engine.py [--faces DIR] [--repeat N]

Small: 250 px LFW crops from people/ (one photo: detection with its fallback chain). Frames: frames of
the sample videos resized to 640x480, 1280x720 and 1920x1080 and written as JPEG to a temp dir (so both
sides decode the same files), timed on the bed-check frame path (no CNN fallback on an empty frame).
Plain is `face_recognition.face_encodings(face_recognition.load_image_file(f))`. Prints ms per image for
each and the ratios sface/plain, dlib/plain and sface/dlib; never asserts. Runs pinned to one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.faces._fr import face_recognition  # noqa: E402
from models.faces.decode import load_image_file  # noqa: E402
from models.faces.engine import FaceEngine  # noqa: E402
from models.settings import EngineSettings  # noqa: E402

SIZES = [(640, 480), (1280, 720), (1920, 1080)]


def video_frames(video: Path, count: int) -> list:
    capture = cv2.VideoCapture(str(video))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for index in range(0, total, max(1, total // count)):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
        if ok:
            frames.append(frame)
        if len(frames) == count:
            break
    capture.release()
    return frames


def time_per_file(files: list[Path], fn, repeat: int) -> float:
    fn(files[0])  # warm-up: model loading is not what we measure
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for f in files:
            fn(f)
        runs.append((time.perf_counter() - start) / len(files) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    default_faces = Path(os.environ.get("BEDCHECK_FACES_DIR", Path(__file__).resolve().parents[2] / "shared/faces"))
    parser.add_argument("--faces", type=Path, default=default_faces)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (args.faces / "people").is_dir():
        sys.exit(f"face images not found in {args.faces}: set BEDCHECK_FACES_DIR")

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    engines = {name: FaceEngine(EngineSettings.load(engine=name)).load() for name in ("sface", "dlib")}
    fr = face_recognition()

    def ours(name: str, thorough: bool):  # type: ignore[no-untyped-def]
        engine = engines[name]

        def run(path: Path) -> None:
            engine.encode_largest(load_image_file(path, engine.settings), thorough=thorough)
        return run

    def plain(path: Path) -> None:
        fr.face_encodings(fr.load_image_file(path))

    sets: dict[str, list[Path]] = {"250x250 LFW": sorted((args.faces / "people").glob("*/0[1-2].jpg"))}
    with tempfile.TemporaryDirectory() as tmp:
        frames = video_frames(args.faces / "video" / "short_hamilton_clip.mp4", 4)
        frames += video_frames(args.faces / "video" / "facenet_pytorch_video.mp4", 4)
        for width, height in SIZES:
            paths = []
            for i, frame in enumerate(frames):
                path = Path(tmp) / f"{width}x{height}_{i}.jpg"
                cv2.imwrite(str(path), cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC))
                paths.append(path)
            sets[f"{width}x{height}"] = paths

        print(f"{'input':<14}{'files':>6}{'sface ms':>10}{'dlib ms':>10}{'plain ms':>10}"
              f"{'sface/plain':>13}{'dlib/plain':>12}{'sface/dlib':>12}")
        for label, files in sets.items():
            thorough = label.endswith("LFW")
            sface_ms = time_per_file(files, ours("sface", thorough), args.repeat)
            dlib_ms = time_per_file(files, ours("dlib", thorough), args.repeat)
            plain_ms = time_per_file(files, plain, args.repeat)
            print(f"{label:<14}{len(files):>6}{sface_ms:>10.1f}{dlib_ms:>10.1f}{plain_ms:>10.1f}"
                  f"{sface_ms / plain_ms:>13.2f}{dlib_ms / plain_ms:>12.2f}{sface_ms / dlib_ms:>12.2f}")

        for name, engine in engines.items():
            image = load_image_file(sets["250x250 LFW"][0], engine.settings)
            face = engine.analyze(image, encode=False).largest
            assert face is not None
            start = time.perf_counter()
            for _ in range(10):
                engine.encode(image, face)
            print(f"{name}: one 128-d encoding of a detected face: {(time.perf_counter() - start) * 100:.1f} ms")


if __name__ == "__main__":
    main()
