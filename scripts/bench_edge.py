"""Time one bed check on the edge: burst capture from a video file -> liveness, best frames, local match,
evidence crop -> result committed in the outbox. Also the cost per frame of each step. Per face engine.

    .venv/bin/python scripts/bench_edge.py [--faces DIR] [--checks N] [--frames 8] [--stride 3] [--engine sface]

Runs pinned to one CPU core (the goal is a bed checked in under 2 s of processing on one core). Each check
opens the video at a different start time (`clip.mp4#t=S`), as a bed camera would be read at different
moments; the patient's enrolled embeddings come from the clip's first frames. Wall time depends on what else
runs on the machine; CPU time (process_time) is the processing cost on one core. Prints figures, never
asserts timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_client.check import check_frames  # noqa: E402
from edge_client.config import EdgeSettings  # noqa: E402
from edge_client.outbox import Outbox  # noqa: E402
from edge_client.sources import fit_frames, open_source  # noqa: E402
from models.faces.engine import FaceEngine  # noqa: E402
from models.faces.match import Embeddings  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.wire import TaskRead  # noqa: E402

VIDEOS = ["short_hamilton_clip.mp4", "facenet_pytorch_video.mp4"]


def fake_task(task_id: int) -> TaskRead:
    now = datetime.now(UTC)
    return TaskRead(task_id=task_id, campaign_id=1, nonce=f"bench-nonce-{task_id:06d}", admission_id=task_id,
                    insured_person_id=1, bed_id=1, bed_label="01", ward_id=1,
                    deadline_at=now + timedelta(minutes=20), issued_at=now)


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values):7.1f} ms  max {max(values):7.1f} ms"


def bench_video(engine: FaceEngine, video: Path, args: argparse.Namespace, outbox: Outbox, first_id: int) -> None:
    probe = open_source(str(video), engine.settings)
    raw = probe.burst(args.frames, args.stride)
    probe.close()
    frames = fit_frames(raw, args.max_side)
    size = f"{raw[0].shape[1]}x{raw[0].shape[0]}"
    if frames[0].shape != raw[0].shape:
        size += f" processed at {frames[0].shape[1]}x{frames[0].shape[0]}"
    enrolled = Embeddings.of(engine.tag, [e for e in (engine.encode_largest(f) for f in frames[:3]) if e is not None])
    duration_s = 8.0 if "hamilton" in video.name else 3.5
    starts = np.linspace(0.5, duration_s - 1.2, args.checks)
    capture_ms, analysis_ms, evidence_ms, commit_ms, total_ms, cpu_ms, verdicts = [], [], [], [], [], [], []
    capture_cpu_ms: list[float] = []
    for index, start in enumerate(starts):
        began, cpu_began = time.perf_counter(), time.process_time()
        source = open_source(f"{video}#t={start:.2f}", engine.settings)
        burst = fit_frames(source.burst(args.frames, args.stride), args.max_side)
        source.close()
        captured, cpu_captured = time.perf_counter(), time.process_time()
        capture_cpu_ms.append((cpu_captured - cpu_began) * 1000)
        record = check_frames(engine, burst, fake_task(first_id + index), enrolled, encode_best=args.encode_best)
        judged = time.perf_counter()
        outbox.add_result(record.upload, bed_label="01", local_verdict=record.local_verdict.value)
        stored, cpu_stored = time.perf_counter(), time.process_time()
        cpu_ms.append((cpu_stored - cpu_began) * 1000)
        capture_ms.append((captured - began) * 1000)
        analysis_ms.append(record.timings_ms.get("analysis", 0.0))
        evidence_ms.append(record.timings_ms.get("evidence", 0.0))
        commit_ms.append((stored - judged) * 1000)
        total_ms.append((stored - began) * 1000)
        verdicts.append(record.local_verdict.value)

    # Per-frame CPU costs on the burst's frames: detection + landmarks + quality, and one encoding.
    analyse, encode = [], []
    for frame in frames:
        t0 = time.process_time()
        found = engine.analyze(frame, encode=False)
        t1 = time.process_time()
        analyse.append((t1 - t0) * 1000)
        if found.largest is not None:
            engine.encode(frame, found.largest)
            encode.append((time.process_time() - t1) * 1000)

    print(f"\n[{engine.name.value}] {video.name}: frames {size}, burst {args.frames} frames (every {args.stride}th), "
          f"{args.checks} checks, encode best {args.encode_best}")
    print(f"  capture (decode burst)   {ms(capture_ms)}   CPU median {statistics.median(capture_cpu_ms):.1f} ms")
    print(f"  analysis (engine)        {ms(analysis_ms)}")
    print(f"  evidence (crop, jpeg)    {ms(evidence_ms)}")
    print(f"  outbox commit            {ms(commit_ms)}")
    print(f"  bed check, total (wall)  {ms(total_ms)}   p90 {np.percentile(total_ms, 90):.1f} ms")
    print(f"  bed check, total (CPU)   {ms(cpu_ms)}   p90 {np.percentile(cpu_ms, 90):.1f} ms")
    print(f"  per frame: detect+landmarks+quality {ms(analyse)}")
    if encode:
        print(f"  per frame: encoding (128-d)          {ms(encode)}")
    # Who is in the frame changes along a clip: the verdicts show what was seen, not an accuracy figure.
    print(f"  device verdicts: { {v: verdicts.count(v) for v in set(verdicts)} }")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_faces = Path(__file__).resolve().parents[2] / "shared" / "faces"
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("BEDCHECK_FACES_DIR", default_faces)))
    parser.add_argument("--checks", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--encode-best", type=int, default=3)
    parser.add_argument("--max-side", type=int, default=EdgeSettings().frame_max_side_px,
                        help="frames are scaled down to this longer side, as the device does")
    parser.add_argument("--engine", choices=["sface", "dlib"], action="append",
                        help="face engine(s) to time (default: both, one after the other)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"one core: {sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    for engine_name in args.engine or ["sface", "dlib"]:
        engine = FaceEngine(EngineSettings(engine=engine_name)).load()
        engine.encode_largest(np.zeros((64, 64, 3), dtype=np.uint8), thorough=False)  # loads every model
        with tempfile.TemporaryDirectory() as tmp:
            outbox = Outbox(Path(tmp) / "outbox.sqlite3")
            for number, name in enumerate(VIDEOS):
                bench_video(engine, args.faces / "video" / name, args, outbox, first_id=number * 1000 + 1)
            outbox.close()


if __name__ == "__main__":
    main()
