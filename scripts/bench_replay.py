"""Evidence used once: how far apart (perceptual-hash bits) a copied image and a genuine new capture lie.

For each real clip of ../shared/faces (video*/), frames every `--step` seconds are turned into what a
device uploads: the face crop, a liveness key frame (the whole frame at 480 px) and the scene frame (faces
blurred). Genuine pairs: two frames of the same clip at least `--apart` seconds apart (the same person, same
place, same camera: a day apart differs more). Copies: each image re-encoded, resized, trimmed, brightened.
Prints, per part and hash size, the copies' largest distance and the genuine pairs' smallest, and where
`server/evidence/fingerprints.py` puts its threshold; also the synthetic rooms of the demo.

    .venv/bin/python scripts/bench_replay.py [--faces ../shared/faces] [--step 0.5] [--apart 2]
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageEnhance

from models.faces import crop_to_jpeg
from models.faces.decode import fit_side
from models.faces.engine import FaceEngine
from models.faces.liveness.report import KEY_FRAME_SIDE_PX
from models.place.scene import scene_jpeg
from models.settings import EngineSettings
from server.evidence.fingerprints import HASH_SIDE, MAX_DISTANCE, VIEWS, EvidencePart, distance, perceptual_hash

Transform = Callable[[Image.Image], Image.Image]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _trim(image: Image.Image, fraction: float, one_side: bool = False) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * fraction), int(h * fraction)
    return image.crop((dx, dy, w, h) if one_side else (dx, dy, w - dx, h - dy))


def _resize(image: Image.Image, scale: float) -> Image.Image:
    w, h = image.size
    return image.resize((max(8, int(w * scale)), max(8, int(h * scale))), Image.Resampling.LANCZOS)


COPIES: dict[str, Transform] = {
    "re-encoded q95": lambda i: _jpeg(i, 95),
    "re-encoded q60": lambda i: _jpeg(i, 60),
    "resized 0.5": lambda i: _jpeg(_resize(i, 0.5), 85),
    "resized 0.8": lambda i: _jpeg(_resize(i, 0.8), 85),
    "resized 1.3": lambda i: _jpeg(_resize(i, 1.3), 85),
    "trimmed 3% each side": lambda i: _jpeg(_trim(i, 0.03), 85),
    "trimmed 5% top-left": lambda i: _jpeg(_trim(i, 0.05, one_side=True), 85),
    "trimmed 3% + 0.8 + q70": lambda i: _jpeg(_resize(_trim(i, 0.03), 0.8), 70),
    "brightened 10%": lambda i: _jpeg(ImageEnhance.Brightness(i).enhance(1.1), 85),
}


def hashed(image: Image.Image) -> bytes | None:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")  # lossless: the copy's own encoding is what is measured
    return perceptual_hash(buffer.getvalue())


def clip_images(path: Path, engine: FaceEngine, step_s: float) -> list[tuple[float, dict[EvidencePart, bytes]]]:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    every = max(1, round(step_s * fps))
    out = []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                rgb = fit_side(np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), 640)
                face = engine.analyze(rgb).largest
                if face is not None:
                    out.append((index / fps, {
                        EvidencePart.CROP: crop_to_jpeg(engine.crop(rgb, face.box)),
                        EvidencePart.KEY_FRAME: crop_to_jpeg(fit_side(rgb, KEY_FRAME_SIDE_PX), quality=85),
                        EvidencePart.SCENE: scene_jpeg(rgb, [face.box])}))
            index += 1
    finally:
        capture.release()
    return out


# Two recordings of the same person in the same room: another capture, as a day apart would be.
SAME_PERSON_OTHER_CAPTURE = [("tran_real_headturns", "tran_replay_monitor"),
                             ("lestari_real_frontal", "lestari_photo_on_phone")]


def measure(faces: Path, step_s: float, apart_s: float) -> None:
    engine = FaceEngine(EngineSettings())
    clips = sorted(p for p in faces.glob("video*/*.mp4"))
    per_clip = {p.stem: clip_images(p, engine, step_s) for p in clips}
    frames = sum(len(v) for v in per_clip.values())
    print(f"{len(clips)} clips, {frames} frames with a face, every {step_s} s; views {VIEWS}")
    for part in (EvidencePart.CROP, EvidencePart.KEY_FRAME, EvidencePart.SCENE):
        limit = MAX_DISTANCE[part]
        copies: dict[str, list[int]] = {name: [] for name in COPIES}
        hashes: dict[str, list[tuple[float, bytes]]] = {}
        for clip, items in per_clip.items():
            for t, images in items:
                original = Image.open(io.BytesIO(images[part]))
                own = hashed(original)
                if own is None:
                    continue
                hashes.setdefault(clip, []).append((t, own))
                for name, transform in COPIES.items():
                    copy = hashed(transform(original))
                    copies[name].append(64 if copy is None else distance(own, copy))
        same_clip = sorted(distance(a, b) for items in hashes.values()
                           for (t1, a), (t2, b) in itertools.combinations(items, 2) if abs(t2 - t1) >= apart_s)
        other_capture = sorted(distance(a, b) for x, y in SAME_PERSON_OTHER_CAPTURE
                               for _, a in hashes.get(x, []) for _, b in hashes.get(y, []))
        other_clip = sorted(distance(a, b) for x, y in itertools.combinations(hashes, 2)
                            for _, a in hashes[x] for _, b in hashes[y])
        caught = sum(d <= limit for v in copies.values() for d in v)
        print(f"\n{part.value} (threshold {limit} bits of {HASH_SIDE * HASH_SIDE}):")
        print("  copies, largest distance: " + ", ".join(f"{n} {max(v)}" for n, v in copies.items() if v))
        print(f"  copies caught: {caught} of {sum(len(v) for v in copies.values())}")
        for name, found in (("same person, other recording", other_capture), ("any two recordings", other_clip),
                            (f"same recording >= {apart_s} s apart", same_clip)):
            if found:
                within = sum(d <= limit for d in found)
                print(f"  {name}: {len(found)} pairs, smallest {found[0]}, 1st percentile "
                      f"{found[len(found) // 100]}, within the threshold {within} ({100 * within / len(found):.1f} %)")


def synthetic_scenes(beds: int = 20, captures: int = 6) -> None:
    from server.simulation.scenes import scene_jpeg as room_capture

    found = []
    for bed in range(1, beds + 1):
        hashes = [perceptual_hash(room_capture(bed, np.random.default_rng(s))) for s in range(captures)]
        found += [distance(a, b) for a, b in itertools.combinations(hashes, 2) if a and b]
    found.sort()
    limit = MAX_DISTANCE[EvidencePart.SCENE]
    print(f"\nsynthetic rooms (demo): {beds} beds x {captures} captures: smallest {found[0]}, median "
          f"{found[len(found) // 2]}, within the threshold {sum(d <= limit for d in found)} of {len(found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(os.environ.get("BEDCHECK_FACES_DIR", Path(__file__).resolve().parents[2] / "shared" / "faces"))
    parser.add_argument("--faces", type=Path, default=default)
    parser.add_argument("--step", type=float, default=0.5)
    parser.add_argument("--apart", type=float, default=2.0)
    args = parser.parse_args()
    measure(args.faces, args.step, args.apart)
    synthetic_scenes()


if __name__ == "__main__":
    main()
