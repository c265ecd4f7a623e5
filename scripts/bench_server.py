"""Server benchmark: 5,000 admissions across 46 hospitals, 100 devices uploading concurrently over loopback.

    .venv/bin/python scripts/bench_server.py [--db sqlite|postgresql|URL] [--batch-size N] [--workers N]

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


def main() -> None:
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
