"""Server CPU per face decision: the crop alone against the fused probe (the crop and the key frames).

Prints the median and p90 of the process CPU time of `CropEncoder.evidence_for` (checking and encoding the
crop, the scene and the key frames; issue 28) over real photos of ../shared/faces/people: the crop cut from one
photo, key frames from that photo and two more of the same person (neutral, blink, open_mouth).

    .venv/bin/python scripts/bench_fused_probe.py [--faces ../shared/faces] [--rounds 20]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.faces import crop_to_jpeg  # noqa: E402
from models.faces.decode import load_image_file  # noqa: E402
from models.faces.engine import FaceEngine  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.verdicts import CaptureOutcome  # noqa: E402
from models.wire import KeyFrame, LivenessReport, ResultUpload  # noqa: E402
from server.checks.evidence import CropEncoder, CropLimits, KeyFrameLimits  # noqa: E402


def _jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _upload(engine: FaceEngine, photos: list[Path], with_frames: bool) -> ResultUpload:
    settings = engine.settings
    images = [load_image_file(p, settings) for p in photos]
    burst = engine.check_burst([images[0]] * 3)
    assert burst.crop_rgb is not None
    crop = crop_to_jpeg(burst.crop_rgb)
    frames = []
    if with_frames:
        for role, image in zip(("neutral", "blink", "open_mouth"), images, strict=False):
            data = _jpeg(image)
            frames.append(KeyFrame(role=role, time_s=1.0, jpeg_b64=base64.b64encode(data).decode(),
                                   sha256=hashlib.sha256(data).hexdigest()))
    scene = _jpeg(np.full((240, 320, 3), 90, dtype=np.uint8))
    return ResultUpload(
        idempotency_key=uuid.uuid4().hex, task_id=1, nonce="n" * 16, outcome=CaptureOutcome.FACE_CAPTURED,
        captured_at=datetime.now(UTC), engine_version=settings.engine_tag,
        embedding=[float(x) for x in burst.encoding],  # type: ignore[union-attr]
        liveness=LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9),
        face_crop_jpeg_b64=base64.b64encode(crop).decode(), evidence_sha256=hashlib.sha256(crop).hexdigest(),
        scene_jpeg_b64=base64.b64encode(scene).decode(), key_frames=frames)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=Path, default=Path("../shared/faces"))
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    settings = EngineSettings()
    engine = FaceEngine(settings).load()
    encoder = CropEncoder(settings, CropLimits(200_000, 512), accept_synthetic=False, scene_limits=settings,
                          key_frame_limits=KeyFrameLimits(200_000, 1024))
    people = sorted(d for d in (args.faces / "people").iterdir() if d.is_dir())
    print(f"engine {settings.engine.value}; {args.rounds} decisions per row; process CPU seconds")
    for label, with_frames in (("crop only", False), ("fused probe (crop + 3 key frames)", True)):
        uploads = [_upload(engine, sorted(people[i % len(people)].glob("*.jpg"))[:3], with_frames)
                   for i in range(args.rounds)]
        encoder.evidence_for(uploads[0])  # models loaded before timing
        cpu = []
        used = []
        for upload in uploads:
            started = time.process_time()
            evidence = encoder.evidence_for(upload)
            cpu.append(time.process_time() - started)
            used.append(sum(1 for f in getattr(evidence, "frames", ()) if f.vector is not None))
        cpu.sort()
        print(f"{label}: median {statistics.median(cpu):.3f} s, p90 {cpu[int(0.9 * (len(cpu) - 1))]:.3f} s; "
              f"frames with a face per decision {statistics.mean(used):.2f}")


if __name__ == "__main__":
    main()
