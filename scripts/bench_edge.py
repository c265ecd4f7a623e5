"""Time one bed check on the edge: burst capture from a video file -> liveness, best frames, local match,
evidence crop -> result committed in the outbox. Also the cost per frame of each step, and the CPU time of a
challenge check: a two-action challenge at its drawn prompt times filmed at 640x480 (30 frames a second), tracked,
filmed into the capture session the server re-judges and judged by the same judge, the face encoded (issues 15
and 25). Per face engine.

    .venv/bin/python scripts/bench_edge.py [--faces DIR] [--checks N] [--frames 8] [--stride 3] [--engine sface]
    .venv/bin/python scripts/bench_edge.py --challenge-only

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
from models.faces.liveness.actions import Action  # noqa: E402
from models.faces.liveness.track import default_landmarker  # noqa: E402
from models.faces.match import Embeddings  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.wire import TaskRead  # noqa: E402

VIDEOS = ["short_hamilton_clip.mp4", "facenet_pytorch_video.mp4"]


# A real head turning and blinking (video_liveness/README.md), spliced into prompt-aligned sessions.
CHALLENGE_CLIP = "tran_real_headturns.mp4"
CHALLENGE_SIZE = (640, 480)


def fake_task(task_id: int, challenge: list[Action] | None = None) -> TaskRead:
    now = datetime.now(UTC)
    return TaskRead(task_id=task_id, campaign_id=1, nonce=f"bench-nonce-{task_id:06d}", admission_id=task_id,
                    insured_person_id=1, bed_id=1, bed_label="01", ward_id=1,
                    deadline_at=now + timedelta(minutes=20), issued_at=now, challenge=challenge or [])


def letterbox(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame scaled into `size` (width, height) on a grey background, as a 640x480 camera would film it."""
    import cv2

    width, height = size
    scale = min(width / frame.shape[1], height / frame.shape[0])
    scaled = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)))
    out = np.full((height, width, 3), 128, dtype=np.uint8)
    top, left = (height - scaled.shape[0]) // 2, (width - scaled.shape[1]) // 2
    out[top:top + scaled.shape[0], left:left + scaled.shape[1]] = scaled
    return out


def bench_challenge(engine: FaceEngine, faces: Path, runs: int) -> None:
    """CPU time of one challenge check on one core, from decoded frames to the upload with its capture session:
    a prompt-aligned session (tests/engine/sessions.py: the patient of the clip doing a drawn two-action
    challenge at its drawn prompt times), letterboxed to 640x480 at 30 frames a second, tracked, filmed into the
    session, judged by the one judge of a session, the face encoded and the scene blurred (issue 25)."""
    import random

    from models.faces.liveness.actions import prompt_schedule
    from tests.engine.sessions import drawable, load_clip, prompt_aligned

    folder = faces / "video_liveness"
    if not (folder / CHALLENGE_CLIP).exists():
        print(f"\nchallenge check: {folder / CHALLENGE_CLIP} not present, skipped")
        return
    clip = load_clip(str(folder), CHALLENGE_CLIP)
    rng = random.Random(15)
    cpu_check, tracking, live, sizes, seconds, frames_n = [], [], [], [], [], []
    for run in range(runs):
        actions, _ = drawable(CHALLENGE_CLIP, rng)
        task = fake_task(90_000 + run, actions)
        task = task.model_copy(update={"challenge_prompts_s": prompt_schedule(task.nonce, len(actions))})
        burst = prompt_aligned(clip, actions, task.nonce, rng)
        frames = [letterbox(f, CHALLENGE_SIZE) for f in burst.frames]
        t1 = time.process_time()
        record = check_frames(engine, frames, task, None, times_s=burst.times_s, prompts_s=burst.prompts_s)
        t2 = time.process_time()
        cpu_check.append((t2 - t1) * 1000)
        tracking.append(record.timings_ms.get("tracking", 0.0))
        liveness = record.upload.liveness
        live.append(bool(liveness and liveness.is_live))
        sizes.append(len(record.upload.model_dump_json()))
        seconds.append(burst.times_s[-1])
        frames_n.append(len(record.upload.session.frames) if record.upload.session else 0)
    print(f"\nchallenge check: prompt-aligned sessions of {CHALLENGE_CLIP} at {CHALLENGE_SIZE[0]}x{CHALLENGE_SIZE[1]}, "
          f"{engine.settings.liveness_fps:.0f} frames/s, two actions, {statistics.median(seconds):.1f} s median, "
          f"{runs} runs")
    print(f"  challenge check (CPU, one core)        {ms(cpu_check)}   (goal <= 1000 ms)")
    print(f"    of which tracking (wall)             {ms(tracking)}")
    print(f"  judged live: {sum(live)}/{runs}; session frames median {statistics.median(frames_n):.0f}; upload per "
          f"check median {statistics.median(sizes) / 1000:.0f} kB, max {max(sizes) / 1000:.0f} kB (goal < 500 kB)")


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
    parser.add_argument("--challenge-runs", type=int, default=5)
    parser.add_argument("--challenge-only", action="store_true", help="only the challenge check")
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
        # and the Face Mesh, which the challenge tracks with whatever the engine: a device loads them at start.
        default_landmarker(engine.settings).detect(np.zeros((64, 64, 3), dtype=np.uint8))
        print(f"--- engine {engine_name}")
        bench_challenge(engine, args.faces, args.challenge_runs)
        if args.challenge_only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            outbox = Outbox(Path(tmp) / "outbox.sqlite3")
            for number, name in enumerate(VIDEOS):
                bench_video(engine, args.faces / "video" / name, args, outbox, first_id=number * 1000 + 1)
            outbox.close()


if __name__ == "__main__":
    main()
