"""Roster import vs. devices: long-poll latency while a 20,000-row HIS roster is imported over the API.

    .venv/bin/python scripts/bench_roster_import.py [--rows 20000] [--devices 40] [--db sqlite|URL]

Starts the real server (one uvicorn worker, its own process), pairs `--devices` ward devices that poll
their tasks (`GET /api/v1/device/tasks?wait_s=0`) and send heartbeats in a loop, and measures each
request's latency: first idle for a few seconds, then while a supervisor imports a roster of `--rows`
admissions (new wards and beds created by the import). Prints p50/p99/max per phase and the import time.
Run it on the code under test (PYTHONPATH decides which server is started).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from server.accounts.service import create_user  # noqa: E402
from server.accounts.tables import Role  # noqa: E402
from server.db import db_scope, make_engine, upgrade  # noqa: E402
from server.devices.service import create_pairing_code, pair_device  # noqa: E402
from server.hospitals import service as hospitals  # noqa: E402
from server.hospitals.tables import HospitalKind  # noqa: E402
from server.simulation.run import ServerProcess  # noqa: E402

PASSWORD = "bench-password-1"
HOSPITALS = 20


def seed(url: str, devices: int) -> list[str]:
    """Hospitals, one ward per device (with a bed), a supervisor; returns the device tokens."""
    engine = make_engine(url)
    upgrade(engine)
    with db_scope(engine) as db:
        county = hospitals.get_or_create_county(db, province="P", city="C", county="Bench County")
        ids = [hospitals.upsert_hospital(db, code=f"R{h}", name=f"医院{h}", county_id=county.id or 0,
                                         kind=HospitalKind.PUBLIC).id or 0 for h in range(HOSPITALS)]
        wards = [hospitals.get_or_create_ward(db, hospital_id=ids[d % HOSPITALS], code=f"DEV{d}")
                 for d in range(devices)]
        for ward in wards:
            hospitals.get_or_create_bed(db, ward_id=ward.id or 0, label="01")
        create_user(db, username="bench-supervisor", password=PASSWORD, role=Role.SUPERVISOR)
        db.commit()
        codes = [create_pairing_code(db, ward_id=w.id or 0, ttl_s=3600, actor="bench") for w in wards]
        tokens = [pair_device(db, code=code, name="bench")[1] for code in codes]
    engine.dispose()
    return tokens


def roster_csv(rows: int) -> bytes:
    lines = ["hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at"]
    for i in range(rows):
        lines.append(f"R{i % HOSPITALS},W{i % 400},{i:05d},INS{i:08d},病人{i},HIS{i:07d},2026-11-01T08:00:00")
    return ("\n".join(lines) + "\n").encode()


class Devices:
    """Device threads polling and heart-beating; latencies tagged with the phase they started in."""

    def __init__(self, url: str, tokens: list[str]) -> None:
        self.url, self.tokens = url, tokens
        self.phase = "idle"
        self.latencies: dict[str, list[float]] = {}
        self.errors = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True) for t in tokens]

    def _run(self, token: str) -> None:
        with httpx.Client(base_url=self.url, headers={"authorization": f"Bearer {token}"}, timeout=120) as client:
            beat = 0
            while not self.stop.wait(0.05):
                phase, started = self.phase, time.perf_counter()
                try:
                    if beat % 5 == 0:
                        client.post("/api/v1/device/heartbeat", json={"device_time": _now(), "outbox_pending": 0})
                    response = client.get("/api/v1/device/tasks", params={"wait_s": 0})
                    response.raise_for_status()
                except httpx.HTTPError:
                    with self._lock:
                        self.errors += 1
                    continue
                beat += 1
                with self._lock:
                    self.latencies.setdefault(phase, []).append((time.perf_counter() - started) * 1000)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--db", default="sqlite", help="sqlite (a temp file) or a database URL")
    parser.add_argument("--idle-s", type=float, default=5.0)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-roster-")
    url = f"sqlite:///{tmp}/bench.db" if args.db == "sqlite" else args.db
    tokens = seed(url, args.devices)
    data = roster_csv(args.rows)
    server = ServerProcess(url, sweep_interval_s=5.0, workers=1)
    devices = Devices(server.url, tokens)
    try:
        token = httpx.post(f"{server.url}/api/v1/auth/token",
                           json={"username": "bench-supervisor", "password": PASSWORD}).json()["access_token"]
        for thread in devices.threads:
            thread.start()
        time.sleep(args.idle_s)
        devices.phase = "import"
        started = time.perf_counter()
        response = httpx.post(f"{server.url}/api/v1/roster/import", params={"create_beds": "true"},
                              headers={"authorization": f"Bearer {token}"},
                              files={"file": ("roster.csv", data, "text/csv")}, timeout=1200)
        import_s = time.perf_counter() - started
        devices.phase = "after"
        time.sleep(1.0)
    finally:
        devices.stop.set()
        for thread in devices.threads:
            thread.join(timeout=130)
        server.stop()
    report = response.json()
    print(f"roster import: {args.rows} rows in {import_s:.1f} s (HTTP {response.status_code}, created "
          f"{report.get('created')}, rejected {len(report.get('rejected', []))}); {args.devices} devices, "
          f"{devices.errors} device errors")
    for phase in ("idle", "import"):
        values = devices.latencies.get(phase, [])
        if values:
            print(f"  {phase:>6}: {len(values):6d} device requests  p50 {statistics.median(values):7.1f} ms  "
                  f"p99 {_pct(values, 0.99):8.1f} ms  max {max(values):8.1f} ms")


if __name__ == "__main__":
    main()
