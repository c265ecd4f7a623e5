"""Enrollment benchmark: photos/s through the real pipeline (both cores) and 1:N search at county scale.

    .venv/bin/python scripts/bench_enrollment.py                       # images, then 10k, 100k, 1.5M
    .venv/bin/python scripts/bench_enrollment.py --sizes 10000,100000 --no-images
    .venv/bin/python scripts/bench_enrollment.py --sizes 0              # images only
    .venv/bin/python scripts/bench_enrollment.py --no-images --sizes 100000 --hnsw-ef 256,1024  # vs former HNSW

Search: synthetic embeddings shaped like dlib's (enrollment/synthetic.py), one photo per person in the
gallery; queries are another photo of an enrolled person (the duplicate-identity case). Ground truth is
exact brute-force search (faiss IndexFlatL2) on the same queries. Queries run on ONE core
(faiss.omp_set_num_threads(1)), one at a time, as the admission desk asks them. Each latency is given as
wall time and as the query thread's CPU time: on a loaded machine the wall p99 measures the scheduler,
the CPU p99 the index. Prints figures (with the load average) only.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enrollment.synthetic import SyntheticFaces  # noqa: E402
from server.persons.face_index import FaceIndex, IndexParams  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measure(label: str, search, probes: np.ndarray, truth: np.ndarray) -> None:
    """One query at a time on one core: wall and CPU (thread) time per query, recall@1 against exact."""
    wall, cpu, hits = [], [], 0
    for q, expected in zip(probes, truth[:, 0], strict=True):
        t0, c0 = time.perf_counter(), time.thread_time()
        found = search(q)
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - t0)
        hits += found == expected + 1
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    print(f"    {label:<26} p50 {np.percentile(w, 50):6.2f} ms  p99 {np.percentile(w, 99):6.2f} ms wall | "
          f"p50 {np.percentile(c, 50):5.2f} ms  p99 {np.percentile(c, 99):5.2f} ms CPU | "
          f"recall@1 {hits / len(probes):.4f}  (1 core, {len(probes)} queries, load {os.getloadavg()[0]:.1f})",
          flush=True)


def bench_search(n: int, *, queries: int, k_factors: list[int], build_threads: int, hnsw_ef: list[int],
                 seed: int = 1) -> None:
    faces = SyntheticFaces(seed)
    centres = faces.identities(n)
    gallery = faces.photos_of(centres)
    picked = np.random.default_rng(seed).choice(n, size=queries, replace=False)
    probes = faces.photos_of(centres[picked])  # another photo of an enrolled person (~0.44 from theirs)
    del centres
    faiss.omp_set_num_threads(build_threads)
    before = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    index = FaceIndex(IndexParams())
    ids = np.arange(1, n + 1, dtype=np.int64)
    for start in range(0, n, 50_000):  # the batches catch_up reads from the DB: the quantiser trains on the first
        index.add(ids[start:start + 50_000], gallery[start:start + 50_000])
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    memory_mb = _rss_mb() - before
    exact = faiss.IndexFlatL2(128)
    exact.add(gallery)
    _, truth = exact.search(probes, 1)
    del exact
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "faces.index"
        started = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - started
        file_mb = path.stat().st_size / 2**20
        started = time.perf_counter()
        FaceIndex.read(path)
        load_s = time.perf_counter() - started
    kind = "exact flat" if index.exact else f"PQ{index.params.pq_m}x4 fast scan + exact re-rank"
    print(f"n={n:>9,}  FaceIndex ({kind}): build {build_s:6.1f} s wall, {build_cpu_s:6.1f} s CPU "
          f"({build_threads} thread(s))  memory {memory_mb:5.0f} MB  file {file_mb:5.0f} MB  "
          f"save {save_s:4.1f} s  load {load_s:4.1f} s  (load average {os.getloadavg()[0]:.1f})", flush=True)

    faiss.omp_set_num_threads(1)
    for kf in k_factors if not index.exact else [index.params.k_factor]:
        index.params = replace(index.params, k_factor=kf)
        _measure("exact" if index.exact else f"k_factor {kf}", lambda q: index.search(q, k=1)[0][0], probes, truth)

    if hnsw_ef:
        bench_hnsw(gallery, probes, truth, build_threads=build_threads, ef_values=hnsw_ef)


def bench_hnsw(gallery: np.ndarray, probes: np.ndarray, truth: np.ndarray, *, build_threads: int,
               ef_values: list[int]) -> None:
    """The former default (HNSW M 32, efConstruction 40), for comparison."""
    faiss.omp_set_num_threads(build_threads)
    before = _rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    hnsw = faiss.IndexHNSWFlat(128, 32)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(gallery)
    print(f"           HNSW M 32 efC 40 (former default): build {time.perf_counter() - started:6.1f} s wall, "
          f"{time.process_time() - cpu_started:6.1f} s CPU  memory {_rss_mb() - before:5.0f} MB  "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    faiss.omp_set_num_threads(1)
    for ef in ef_values:
        hnsw.hnsw.efSearch = ef
        _measure(f"HNSW efSearch {ef}", lambda q: int(hnsw.search(q.reshape(1, -1), 1)[1][0, 0]) + 1, probes, truth)


def bench_images(faces_dir: Path, workers: int) -> None:
    from enrollment.pipeline import EnrollmentOptions, run_enrollment
    from enrollment.sources import folder_jobs
    from models.settings import EngineSettings
    from server.db import make_engine, upgrade

    jobs = []
    for sub in ("people", "ageitgey"):
        if (faces_dir / sub).is_dir():
            jobs += folder_jobs(faces_dir / sub)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        options = EnrollmentOptions(index_path=Path(tmp) / "faces.index", rejects_path=Path(tmp) / "rejects.csv",
                                    workers=workers, show_progress=False)
        started = time.perf_counter()
        cpu_before = _cpu_s()
        summary = run_enrollment(engine, jobs, options, EngineSettings.load())
        elapsed = time.perf_counter() - started
        cpu_per_image = (_cpu_s() - cpu_before) / max(summary.seen, 1)
        engine.dispose()
    print(f"enrollment: {summary.seen} photos in {elapsed:.1f} s with {workers} worker processes = "
          f"{summary.seen / elapsed:.1f} images/s (enrolled {summary.enrolled}, rejected {summary.rejected}; "
          f"includes worker start-up)", flush=True)
    # Wall-clock figures swing with whatever else runs; CPU seconds per photo (parent + workers) do not.
    print(f"enrollment CPU: {cpu_per_image:.2f} s per photo (workers + parent) -> {workers / cpu_per_image:.1f} "
          f"images/s on {workers} idle cores", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1500000", help="gallery sizes, comma-separated; 0 = none")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k-factor", default="16,64,128", help="re-ranked candidates per neighbour to measure")
    parser.add_argument("--hnsw-ef", default="",
                        help="also measure the former HNSW index at these efSearch values, e.g. 256,1024 (slow build)")
    parser.add_argument("--build-threads", type=int, default=1, help="threads for building (queries use 1)")
    parser.add_argument("--no-images", action="store_true", help="skip the real-image throughput run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--faces-dir", type=Path,
                        default=Path(os.environ.get("BEDCHECK_FACES_DIR",
                                                    Path(__file__).resolve().parents[2] / "shared" / "faces")))
    args = parser.parse_args()
    if not args.no_images:
        if (args.faces_dir / "people").is_dir():
            bench_images(args.faces_dir, args.workers)
        else:
            print(f"no real images at {args.faces_dir}: throughput skipped")
    k_factors = [int(v) for v in args.k_factor.split(",")]
    hnsw_ef = [int(v) for v in args.hnsw_ef.split(",") if v]
    for n in (int(s) for s in args.sizes.split(",")):
        if n > 0:
            bench_search(n, queries=min(args.queries, n), k_factors=k_factors, build_threads=args.build_threads,
                         hnsw_ef=hnsw_ef)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
