"""Simulate counties and one spot check over all of them, against a real server on loopback.

    .venv/bin/python scripts/simulate.py --counties 1 --hospitals 46 --inpatients 5000 [--database-url URL] [--json]

Each county gets `--hospitals` hospitals and `--inpatients` inpatients; one simulated device per ward
answers over HTTP; prints the summary (time to complete, throughput, verdicts, precision/recall).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server import lifecycle  # noqa: E402
from server.evidence.workers import default_processes  # noqa: E402
from server.simulation.county import CountySpec  # noqa: E402
from server.simulation.run import SimulationOptions, simulate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counties", type=int, default=1)
    p.add_argument("--hospitals", type=int, default=46, help="per county")
    p.add_argument("--inpatients", type=int, default=5000, help="per county")
    p.add_argument("--beds-per-ward", type=int, default=30, help="one simulated device per ward")
    p.add_argument("--bed-hanging-rate", type=float, default=0.03)
    p.add_argument("--impersonation-rate", type=float, default=0.01)
    p.add_argument("--spoof-rate", type=float, default=0.002)
    p.add_argument("--silent-rate", type=float, default=0.0, help="beds nobody answers for (close at deadline)")
    p.add_argument("--offline-wards", type=int, default=3, help="per county; they answer after --offline-delay")
    p.add_argument("--offline-delay", type=float, default=5.0)
    p.add_argument("--deadline", type=int, default=120, help="spot-check deadline, seconds")
    p.add_argument("--database-url", default="",
                   help="default: a new SQLite file in a temp dir; 'postgresql' starts a throwaway cluster")
    p.add_argument("--batch-size", type=int, default=100, help="results per upload request (1 = one each)")
    p.add_argument("--workers", type=int, default=2, help="server worker processes")
    p.add_argument("--pre-paired", action="store_true", help="devices paired before the run (default: pair over "
                   "HTTP at start; a province's devices all pairing in one second is not what is measured)")
    p.add_argument("--device-processes", type=int, default=None,
                   help="processes the simulated devices run in (default: one per 500 devices; a province's 1,840 "
                   "devices as threads of one process measure the simulator's GIL, not the server)")
    p.add_argument("--evidence-workers", type=int, default=None,
                   help="evidence worker processes beside the server (default: one per core; 0: the server checks "
                   "evidence itself)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    lifecycle.stop_on_signals()  # SIGTERM stops the server, the devices and the cluster as Ctrl-C does
    try:
        summary = _run(a)
    except KeyboardInterrupt:
        sys.exit("simulate: stopped; the server, device processes and database cluster it started are stopped")
    if a.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key:>22}: {value}")


def _run(a: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    specs = [CountySpec(name=f"County {i + 1}", hospitals=a.hospitals, public_hospitals=round(a.hospitals * 28 / 46),
                        inpatients=a.inpatients, beds_per_ward=a.beds_per_ward, bed_hanging_rate=a.bed_hanging_rate,
                        impersonation_rate=a.impersonation_rate, spoof_rate=a.spoof_rate, silent_rate=a.silent_rate,
                        offline_wards=a.offline_wards, seed=a.seed + i) for i in range(a.counties)]
    evidence_workers = default_processes() if a.evidence_workers is None else a.evidence_workers
    options = SimulationOptions(deadline_s=a.deadline, offline_delay_s=a.offline_delay, batch_size=a.batch_size,
                                server_workers=a.workers, pre_paired=a.pre_paired,
                                device_processes=a.device_processes,
                                evidence_workers=evidence_workers)
    if a.database_url == "postgresql":
        from tests.fixtures.postgres import create_database, throwaway_cluster

        with throwaway_cluster() as admin:
            if admin is None:
                sys.exit("PostgreSQL binaries not found")
            url = create_database(admin)
            summary = simulate(url, specs, options)
    else:
        url = a.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='bedcheck-sim-')}/sim.db"
        summary = simulate(url, specs, options)
    summary["database"] = url.split("@")[-1].split("://")[0]
    return summary


if __name__ == "__main__":
    main()
