"""The capture session (issue 25): what a check uploads, what the server's re-judgement costs, what it refuses.

    .venv/bin/python scripts/bench_session.py [--faces DIR] [--aligned 40] [--replays 8] [--runs 5]

- Upload size per check: a genuine device check of a prompt-aligned session (crop, scene, session, report).
- Server CPU per re-judged check on one core: decode the session's JPEGs, landmarks on every frame, the
  challenge and the 3-D test (models/faces/liveness/session.judge_session), the identity encodings (neutral,
  each action, the crop's frame and two spread over the session), and a sha256 and an 8x8 average hash of
  every frame, crop and scene (the perceptual hashes the evidence check keeps are computed elsewhere; this is
  their order of cost).
- Prompt-aligned sessions spliced from the real clips (tests/engine/sessions.py) passing on the device and in the
  server's re-judgement; recordings replayed without knowing the challenge (windows of every live clip, the
  monitor replay, the photo on a phone) refused.
- The chance rate: over every start (every 0.5 s) of every live clip and drawn challenges, the share of
  recording windows that contain the asked actions in the asked order and timing (what a replaying device that
  knows the challenge but not its recording's future can hope for per window), and the share of
  (recording, challenge) pairs for which at least one start would pass (a device that tries every start).

Runs pinned to one CPU core; CPU time is process_time. Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.faces import crop_to_jpeg  # noqa: E402
from models.faces.engine import FaceEngine  # noqa: E402
from models.faces.liveness.actions import LivenessMethod, draw_challenge, prompt_schedule  # noqa: E402
from models.faces.liveness.report import liveness_report  # noqa: E402
from models.faces.liveness.session import (  # noqa: E402
    capture_session,
    decode_session,
    identity_indices,
    judge_session,
)
from models.faces.liveness.track import default_landmarker  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from models.verdicts import CaptureOutcome  # noqa: E402
from models.wire import CaptureSession, ResultUpload  # noqa: E402
from tests.engine.sessions import (  # noqa: E402
    LIVE_WINDOW_CLIPS,
    REPLAY_CLIPS,
    drawable,
    load_clip,
    prompt_aligned,
    replayed,
)

ALIGNED_CLIPS = ["tran_real_headturns.mp4", "liveportrait_d12_mouth_turns.mp4"]


def average_hash(jpeg: bytes) -> int:
    grey = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(grey, (8, 8), interpolation=cv2.INTER_AREA)
    return int("".join("1" if v else "0" for v in (small > small.mean()).flatten()), 2)


def upload_of(engine: FaceEngine, burst, nonce: str) -> tuple[ResultUpload, CaptureSession]:
    settings = engine.settings
    wire, session = capture_session(burst.frames, burst.times_s, burst.track, burst.actions, burst.prompts_s,
                                    settings)
    judged = judge_session(session, burst.actions, default_landmarker(settings), settings,
                           schedule=prompt_schedule(nonce, len(burst.actions)))
    source = burst.frames[burst.track.tracked[len(burst.track.tracked) // 4].index]
    found = engine.check_burst([source])
    assert found.encoding is not None and found.crop_rgb is not None
    crop = crop_to_jpeg(found.crop_rgb)
    from models.place.scene import scene_jpeg

    scene = scene_jpeg(burst.frames[len(burst.frames) // 2], [])
    upload = ResultUpload(idempotency_key="b" * 32, task_id=1, nonce=nonce, outcome=CaptureOutcome.FACE_CAPTURED,
                          captured_at="2026-12-07T12:00:00+00:00", embedding=[float(x) for x in found.encoding],
                          liveness=liveness_report(judged.as_result()), engine_version=engine.tag,
                          face_crop_jpeg_b64=base64.b64encode(crop).decode(),
                          evidence_sha256=hashlib.sha256(crop).hexdigest(),
                          scene_jpeg_b64=base64.b64encode(scene).decode(), session=wire)
    return upload, wire


def server_cpu(engine: FaceEngine, upload: ResultUpload, actions, nonce: str) -> tuple[float, float, float, float]:
    """(total, judge, encodings, hashes) CPU seconds of the server's re-judgement of one upload."""
    settings = engine.settings
    landmarker = default_landmarker(settings)
    t0 = time.process_time()
    assert upload.session is not None
    session = decode_session(upload.session, settings)
    judged = judge_session(session, actions, landmarker, settings, method=LivenessMethod.CHALLENGE,
                           schedule=prompt_schedule(nonce, len(actions)))
    t1 = time.process_time()
    frames = session.frames
    wanted = identity_indices(judged, len(frames))
    for index in wanted:
        engine.encode_largest(frames[index].image, thorough=False)
    t2 = time.process_time()
    blobs = [base64.b64decode(f.jpeg_b64) for f in upload.session.frames]
    blobs += [base64.b64decode(upload.face_crop_jpeg_b64 or ""), base64.b64decode(upload.scene_jpeg_b64 or "")]
    for blob in blobs:
        hashlib.sha256(blob).hexdigest()
        average_hash(blob)
    t3 = time.process_time()
    return t3 - t0, t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=Path(os.environ.get("BEDCHECK_FACES_DIR", "../shared/faces")))
    parser.add_argument("--aligned", type=int, default=40, help="prompt-aligned sessions per clip")
    parser.add_argument("--replays", type=int, default=8, help="replayed windows per recording")
    parser.add_argument("--runs", type=int, default=5, help="server re-judgements timed")
    parser.add_argument("--chance-draws", type=int, default=6, help="challenges drawn per clip for the chance rate")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    folder = str(args.faces / "video_liveness")
    if not Path(folder, "tran_real_headturns.mp4").exists():
        print(f"{folder}: clips not present")
        return
    settings = EngineSettings()
    engine = FaceEngine(settings)
    landmarker = default_landmarker(settings)
    rng = random.Random(2026)

    # Upload size and server CPU on genuine checks.
    clip = load_clip(folder, "tran_real_headturns.mp4")
    sizes, totals, judges, encodes, hashes, frames = [], [], [], [], [], []
    engine.encode_largest(clip.frames[0], thorough=False)  # models loaded before timing
    for _ in range(args.runs):
        actions, nonce = drawable("tran_real_headturns.mp4", rng)
        burst = prompt_aligned(clip, actions, nonce, rng)
        upload, wire = upload_of(engine, burst, nonce)
        sizes.append(len(upload.model_dump_json()))
        frames.append(len(wire.frames))
        total, judge, encode, hashed = server_cpu(engine, upload, actions, nonce)
        totals.append(total * 1000)
        judges.append(judge * 1000)
        encodes.append(encode * 1000)
        hashes.append(hashed * 1000)
    print(f"genuine checks (tran_real_headturns, prompt-aligned, 2 actions), {args.runs} runs, engine {engine.name}")
    print(f"  upload per check (JSON)               median {statistics.median(sizes) / 1000:.0f} kB, "
          f"max {max(sizes) / 1000:.0f} kB (goal < 500 kB); session frames median {statistics.median(frames):.0f}")
    print(f"  server re-judgement CPU, one core     median {statistics.median(totals):.0f} ms, "
          f"max {max(totals):.0f} ms (goal <= 500 ms)")
    print(f"    decode + landmarks + judge          median {statistics.median(judges):.0f} ms")
    print(f"    identity encodings                  median {statistics.median(encodes):.0f} ms")
    print(f"    sha256 + average hash, every frame  median {statistics.median(hashes):.0f} ms")

    def rejudged(burst, nonce: str) -> tuple[bool, bool, tuple[str, ...]]:
        wire, session = capture_session(burst.frames, burst.times_s, burst.track, burst.actions, burst.prompts_s,
                                        settings)
        schedule = prompt_schedule(nonce, len(burst.actions))
        device = judge_session(session, burst.actions, landmarker, settings, schedule=schedule)
        server = judge_session(decode_session(CaptureSession.model_validate_json(wire.model_dump_json()), settings),
                               burst.actions, landmarker, settings, schedule=schedule)
        return device.is_live, server.is_live, server.reasons

    print("\nprompt-aligned sessions (a person doing the drawn challenge promptly)")
    for name in ALIGNED_CLIPS:
        clip = load_clip(folder, name)
        device_ok = server_ok = 0
        reasons: dict[str, int] = {}
        for _ in range(args.aligned):
            actions, nonce = drawable(name, rng)
            device, server, why = rejudged(prompt_aligned(clip, actions, nonce, rng), nonce)
            device_ok += device
            server_ok += server
            for r in why:
                reasons[r] = reasons.get(r, 0) + 1
        print(f"  {name:36s} device {device_ok}/{args.aligned}  server {server_ok}/{args.aligned}  "
              f"failures {dict(sorted(reasons.items()))}")

    print("\nrecordings replayed without knowing the challenge (prompts reported at the drawn times)")
    refused_all = total_all = 0
    for name in (*REPLAY_CLIPS, *LIVE_WINDOW_CLIPS):
        clip = load_clip(folder, name)
        length_s = len(clip.frames) / clip.fps
        refused = 0
        for _ in range(args.replays):
            actions = draw_challenge(rng, 2)
            nonce = f"nonce-{rng.getrandbits(64):016x}"
            _, server, _ = rejudged(replayed(clip, actions, nonce, rng.uniform(0, max(0.0, length_s - 1.0))), nonce)
            refused += not server
        refused_all += refused
        total_all += args.replays
        print(f"  {name:36s} refused {refused}/{args.replays}")
    print(f"  all                                  refused {refused_all}/{total_all} "
          f"({100 * refused_all / max(total_all, 1):.1f} %)")

    print("\nchance rate: windows of live recordings against drawn challenges (every start, 0.5 s apart)")
    windows = passed = pairs = any_start = 0
    for name in LIVE_WINDOW_CLIPS:
        clip = load_clip(folder, name)
        length_s = len(clip.frames) / clip.fps
        for _ in range(args.chance_draws):
            actions = draw_challenge(rng, 2)
            nonce = f"nonce-{rng.getrandbits(64):016x}"
            hit = False
            for start in np.arange(0.0, max(0.5, length_s - 1.0), 0.5):
                burst = replayed(clip, actions, nonce, float(start))
                _, session = capture_session(burst.frames, burst.times_s, burst.track, actions, burst.prompts_s,
                                             settings)
                live = judge_session(session, actions, landmarker, settings,
                                     schedule=prompt_schedule(nonce, 2)).is_live
                windows += 1
                passed += live
                hit = hit or live
            pairs += 1
            any_start += hit
    print(f"  per window: {passed}/{windows} pass ({100 * passed / max(windows, 1):.2f} %)")
    print(f"  per (recording, challenge), best start: {any_start}/{pairs} ({100 * any_start / max(pairs, 1):.1f} %)")
    print(f"  shipped challenge set: {len(_challenges())} ordered pairs (a head action and a face action); "
          f"prompts drawn {prompt_schedule('x', 2)} s for one nonce")


def _challenges() -> set[tuple[str, ...]]:
    rng = random.Random(1)
    return {tuple(a.value for a in draw_challenge(rng, 2)) for _ in range(5000)}


if __name__ == "__main__":
    main()

