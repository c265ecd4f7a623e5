"""Server benchmark: 5,000 admissions across 46 hospitals, 100 devices uploading concurrently over loopback.

    .venv/bin/python scripts/bench_server.py [--db sqlite|postgresql|URL] [--batch-size N] [--workers N]
    .venv/bin/python scripts/bench_server.py --place

--place instead times the place check (实地, server/evidence/place.py) per capture on one core, on the
real-scene set (models/place/evaluation.py: backgrounds of the clips in ../shared/faces/video*, read at run
time), and prints its false-mismatch and false-match rates at the server's threshold.

Prints results per second, p50/p99 upload latency, the time from the spot-check command to the complete
aggregate, and the aggregation query time. With --db postgresql a throwaway cluster is started.
--batch-size 1 makes every result its own request (latency per result); the default 100 is how a device
syncs its outbox (latency per request, which carries up to 100 results).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.simulation.county import CountySpec  # noqa: E402
from server.simulation.run import SimulationOptions, simulate  # noqa: E402


def run(url: str, batch_size: int, workers: int) -> dict:
    spec = CountySpec(hospitals=46, inpatients=5000, wards=100, offline_wards=0, seed=3)
    return simulate(url, spec, SimulationOptions(deadline_s=300, batch_size=batch_size, server_workers=workers))


def bench_place() -> None:
    """Server cost of one capture's place check, on one core: decode the scene, its features, the bed's
    reference decoded and matched (the usual case); and a mismatch, which also tries the ward's other beds."""
    import os
    import statistics
    import time

    import cv2

    from models.faces.detect import detect_faces
    from models.place.evaluation import build_scene_set, evaluate
    from models.place.scene import scene_jpeg
    from models.settings import EngineSettings
    from server.evidence.place import best_reference, scene_features
    from server.places.service import scene_limits
    from server.settings import ServerSettings
    from server.simulation.real_faces import default_faces_dir

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    faces_dir = default_faces_dir()
    if faces_dir is None:
        sys.exit("no face image folder (BEDCHECK_FACES_DIR): the real-scene set is read from its clips")
    settings, engine_settings = ServerSettings(), EngineSettings()
    limits, threshold = scene_limits(settings, engine_settings), settings.place_min_inliers
    scene_set = build_scene_set(faces_dir, lambda image: detect_faces(image, engine_settings, thorough=False))
    references = {p: scene_jpeg(image, []) for p, image in scene_set.references.items()}
    ward = list(references.values())  # a mismatch tries every reference of the ward
    same: list[float] = []
    other: list[float] = []
    for scene in scene_set.scenes:
        jpeg = scene_jpeg(scene.image, [])
        # CPU time of this process: the cost on one core, whatever else the machine is running.
        started = time.process_time()
        features = scene_features(jpeg, limits)
        if scene.place in references:
            best_reference(features, [references[scene.place]], limits, threshold)
            same.append((time.process_time() - started) * 1000)
        else:
            best_reference(features, ward, limits, threshold)
            other.append((time.process_time() - started) * 1000)
    rates = evaluate(scene_set, threshold)

    def summary(values: list[float]) -> str:
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        return (f"p50 {ordered[len(ordered) // 2]:.1f} ms, p99 {p99:.1f} ms, mean {statistics.fmean(ordered):.1f} ms "
                f"over {len(ordered)}")

    print(f"place check, CPU time of one core per capture, threshold {threshold} inliers; "
          f"references: {len(references)}, scenes: {len(scene_set.scenes)}")
    print(f"same place (one reference): {summary(same)}")
    print(f"another room (all {len(ward)} references tried): {summary(other)}")
    print(f"false mismatches: {rates.false_mismatches}/{rates.genuine} ({rates.false_mismatch_rate:.2%}), "
          f"lowest genuine {rates.lowest_genuine} inliers; false matches: {rates.false_matches}/{rates.impostor} "
          f"({rates.false_match_rate:.2%}), highest impostor {rates.highest_impostor} inliers")


def main() -> None:
    if "--place" in sys.argv[1:]:
        bench_place()
        return
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="sqlite")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    a = p.parse_args()
    if a.db == "postgresql":
        from tests.fixtures.postgres import create_database, throwaway_cluster

        with throwaway_cluster() as admin:
            if admin is None:
                sys.exit("PostgreSQL binaries not found")
            summary = run(create_database(admin), a.batch_size, a.workers)
    else:
        url = a.db if "://" in a.db else f"sqlite:///{tempfile.mkdtemp(prefix='bedcheck-bench-')}/bench.db"
        summary = run(url, a.batch_size, a.workers)
    lat = summary["upload_latency_ms"]
    print(f"database: {a.db}; devices: {summary['wards']}; results: {summary['uploads']}; "
          f"batch size: {a.batch_size}; server workers: {a.workers}")
    print(f"results per second: {summary['results_per_second']}")
    print(f"upload latency p50 {lat['p50']} ms, p99 {lat['p99']} ms")
    print(f"spot-check command -> complete aggregate: {summary['seconds_to_complete']} s")
    print(f"aggregation query: {summary['aggregate_query_ms']} ms")
    print(json.dumps({k: summary[k] for k in ("verdicts", "precision", "recall", "device_errors")}))


if __name__ == "__main__":
    main()
