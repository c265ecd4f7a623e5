"""The 3-D test and the challenge on print attacks and on genuine clips, with figures to quote.

    .venv/bin/python scripts/bench_liveness.py [--faces DIR] [--sequences 200] [--seed 2026] [--window-s 3]
                                               [--max-rotation 30] [--fps 5] [--no-genuine]

Print attacks: real still photos of `people/` and `asian_dev/` cut as portrait prints, flat or bent round a
cup, swung and moved in front of a pinhole camera (tests/engine/print_attacks.py), each judged against a
random server challenge (every challenge moves the head); `--max-rotation` swings the sheet harder (the test
suite uses 30 degrees), `--fps` films the 2.4-second swing at a device's rate (the test suite uses 5). Prints
the 3-D verdicts (`3d`, `planar`, `not_measured`), how many the 3-D test refused (goal >= 99 %) and how many
passed their challenge (goal 0).

Genuine clips: every `--window-s` window (step 0.5 s, 15 frames a second) of the live clips of
`video_liveness/` and `video/`, judged by the 3-D test alone (texture witness included): a `planar` verdict
there would refuse a real patient as a photo (goal 0). Never asserts; the seed makes a run repeatable, another
seed draws other attacks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.faces.liveness.burst import read_burst  # noqa: E402
from models.faces.liveness.challenge import measure_track, neutral_frame  # noqa: E402
from models.faces.liveness.planarity import judge_planarity  # noqa: E402
from models.faces.liveness.track import FaceTrack, default_landmarker, track_frames  # noqa: E402
from models.settings import EngineSettings  # noqa: E402
from tests.engine.print_attacks import judged_attacks  # noqa: E402

GENUINE_CLIPS = ("video_liveness/tran_real_headturns.mp4", "video_liveness/lestari_real_frontal.mp4",
                 "video_liveness/liveportrait_d9_blinks.mp4", "video_liveness/liveportrait_d12_mouth_turns.mp4",
                 "video_liveness/liveportrait_d13_talking_blinks.mp4",
                 "video_liveness/liveportrait_d18_mouth_open.mp4", "video/short_hamilton_clip.mp4")


def bench_attacks(faces: Path, sequences: int, seed: int, max_rotation_deg: float, fps: float,
                  settings: EngineSettings) -> None:
    photos = sorted((faces / "people").glob("*/*.jpg")) + sorted((faces / "asian_dev").glob("images/*/*.jpg"))
    if not photos:
        print(f"print attacks: no photos under {faces}, skipped")
        return
    verdicts: Counter[str] = Counter()
    refused = passed = lost = 0
    frames = max(3, round(2.4 * fps))
    began = time.perf_counter()
    for judged in judged_attacks(photos, default_landmarker(settings), settings, seed, frames=frames, fps=fps,
                                 max_rotation_deg=max_rotation_deg):
        if judged.result is None:
            lost += 1
            continue
        assert judged.result.planarity is not None
        verdicts[judged.result.planarity.verdict.value] += 1
        refused += judged.refused_by_3d_test
        passed += judged.result.is_live
        if sum(verdicts.values()) == sequences:
            break
    total = sum(verdicts.values())
    print(f"print attacks (seed {seed}, swung up to {max_rotation_deg:.0f} degrees, {total} sequences of {frames} "
          f"frames at {fps:g} per second, {lost} lost by the detector, "
          f"{time.perf_counter() - began:.0f} s)")
    print(f"  3-D verdicts: {dict(verdicts)}")
    print(f"  refused by the 3-D test: {refused}/{total} ({100 * refused / total:.1f} %, goal >= 99 %)")
    print(f"  passed their random challenge: {passed} (goal 0)")


def bench_genuine(faces: Path, window_s: float, settings: EngineSettings) -> None:
    at15 = settings.model_copy(update={"liveness_fps": 15.0})
    landmarker = default_landmarker(at15)
    print(f"genuine clips, {window_s:.0f}-second windows every 0.5 s, 3-D test alone")
    for name in GENUINE_CLIPS:
        clip = faces / name
        if not clip.exists():
            print(f"  {name}: not present, skipped")
            continue
        burst = read_burst(str(clip), at15, max_s=25)
        track = track_frames(burst.frames, burst.times_s, landmarker, at15)
        verdicts: Counter[str] = Counter()
        planar_at: list[float] = []
        start = track.tracked[0].time_s if track.tracked else 0.0
        while track.tracked and start + window_s <= track.tracked[-1].time_s + 1e-6:
            frames = [f for f in track.tracked if start <= f.time_s < start + window_s]
            measures = measure_track(FaceTrack(len(frames), track.frame_size, frames))
            reference = neutral_frame(measures, at15, None)
            if reference is not None:
                verdict = judge_planarity({f.index: f.points for f in frames}, measures, reference, at15,
                                          track.images).verdict
                verdicts[verdict.value] += 1
                if verdict.value == "planar":
                    planar_at.append(round(start, 1))
            start += 0.5
        print(f"  {name:50s} {dict(verdicts)}" + (f"  planar at {planar_at} s" if planar_at else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "faces")
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--window-s", type=float, default=3.0)
    parser.add_argument("--max-rotation", type=float, default=30.0, help="largest swing of the print, degrees")
    parser.add_argument("--fps", type=float, default=5.0, help="frames a second of the rendered swing")
    parser.add_argument("--no-genuine", action="store_true", help="only the print attacks")
    args = parser.parse_args()
    settings = EngineSettings()
    bench_attacks(args.faces, args.sequences, args.seed, args.max_rotation, args.fps, settings)
    if not args.no_genuine:
        bench_genuine(args.faces, args.window_s, settings)


if __name__ == "__main__":
    main()
