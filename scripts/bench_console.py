"""Console benchmark: the flag queue page rendered by the server with 5,000 flags in the database.

    .venv/bin/python scripts/bench_console.py [--db sqlite|postgresql|URL] [--flags 5000] [--requests 200]
    .venv/bin/python scripts/bench_console.py --loop 60   # the reviewer's loop in headless Chromium

--loop N: a reviewer works N flags in Chromium as a person does (issue 29): open the queue (我的待办), open the
first flag, decide (first review, "submit and next"), and the next flag's page that the decision opens. Each
step's server time (Server-Timing) and the browser's time to the loaded page are printed as p50/p95.

Starts the real server (one uvicorn worker, its own process), signs in through the console form and times
sequential GETs of the queue page over loopback: first page, a deep page, filtered, and as hospital staff.
Prints p50/p99 per variant (the goal is under 300 ms): of the whole request over loopback, and of the time
the server spent on the page (its Server-Timing header: queries and template rendering).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from models.verdicts import FlagKind  # noqa: E402
from server.accounts.service import create_user  # noqa: E402
from server.accounts.tables import Role  # noqa: E402
from server.campaigns.tables import Campaign, CampaignKind, CampaignStatus  # noqa: E402
from server.db import db_scope, make_engine, upgrade, utcnow  # noqa: E402
from server.flags.tables import Flag, FlagStatus  # noqa: E402
from server.hospitals import service as hospitals  # noqa: E402
from server.hospitals.tables import HospitalKind  # noqa: E402
from server.simulation.run import ServerProcess  # noqa: E402

PASSWORD = "bench-password"
HOSPITALS = 46


def seed(url: str, flags_n: int) -> list[int]:
    """46 hospitals, 10 campaigns, `flags_n` flags of mixed kinds and statuses, a supervisor and staff."""
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(7)
    with db_scope(engine) as db:
        county = hospitals.get_or_create_county(db, province="P", city="C", county="Bench County")
        ids = [hospitals.upsert_hospital(db, code=f"B{h}", name=f"第{h}人民医院", county_id=county.id or 0,
                                         kind=HospitalKind.PUBLIC).id or 0 for h in range(HOSPITALS)]
        now = utcnow()
        campaigns = []
        for _ in range(10):
            # Completed already: the server's sweep has nothing to close while the pages are timed.
            campaign = Campaign(kind=CampaignKind.SPOT_CHECK, created_by="bench", deadline_at=now + timedelta(hours=1),
                                status=CampaignStatus.COMPLETED, completed_at=now)
            db.add(campaign)
            db.flush()
            campaigns.append(campaign.id)
        kinds = [FlagKind.ABSENT, FlagKind.IMPERSONATED, FlagKind.SPOOF, FlagKind.OVERDUE]
        rows = [{"kind": rng.choice(kinds), "status": rng.choice(list(FlagStatus)), "hospital_id": rng.choice(ids),
                 "campaign_id": rng.choice(campaigns), "details": {"distance": round(rng.uniform(0.3, 1.2), 4)},
                 "created_at": now, "updated_at": now} for _ in range(flags_n)]
        db.execute(insert(Flag), rows)
        create_user(db, username="sup", password=PASSWORD, role=Role.SUPERVISOR)
        create_user(db, username="staff", password=PASSWORD, role=Role.HOSPITAL_STAFF, hospital_id=ids[0])
        create_user(db, username="rev", password=PASSWORD, role=Role.REVIEWER)
    engine.dispose()
    return ids


def signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/sign-in").text).group(1)
    response = client.post("/console/sign-in", data={"csrf_token": token, "username": username, "password": PASSWORD})
    if response.status_code != 303:
        sys.exit(f"sign-in failed: {response.status_code}")
    return client


def _p50_p99(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def time_page(client: httpx.Client, path: str, n: int) -> tuple[tuple[float, float], tuple[float, float], int]:
    """(p50, p99) of the request over loopback and of the server's own time (Server-Timing), page size."""
    client.get(path).raise_for_status()  # warm-up: templates compiled, connections pooled
    total, server = [], []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        total.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        server.append(float(response.headers["server-timing"].split("dur=")[1]))
    return _p50_p99(total), _p50_p99(server), len(response.content)


def run(url: str, flags_n: int, n: int) -> None:
    ids = seed(url, flags_n)
    server = ServerProcess(url, sweep_interval_s=5.0, workers=1)
    try:
        sup, staff = signed_in(server.url, "sup"), signed_in(server.url, "staff")
        variants = [("supervisor, page 1", sup, "/console/flags?status=actionable"),
                    ("supervisor, page 80", sup, "/console/flags?status=all&page=80"),
                    ("supervisor, hospital + status filter", sup, f"/console/flags?hospital_id={ids[3]}&status=open"),
                    ("supervisor, kind filter, page 10", sup, "/console/flags?kind=absent&page=10"),
                    ("hospital staff (scoped), page 1", staff, "/console/flags?status=actionable")]
        print(f"flags in database: {flags_n}; requests per variant: {n}; page size 50")
        for name, client, path in variants:
            (p50, p99), (s50, s99), size = time_page(client, path, n)
            print(f"{name:38s} request p50 {p50:6.1f} ms p99 {p99:6.1f} ms | server p50 {s50:6.1f} ms "
                  f"p99 {s99:6.1f} ms ({size / 1024:.0f} KiB)")
        sup.close()
        staff.close()
    finally:
        server.stop()


def _p50_p95(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def _server_ms(response) -> float:  # type: ignore[no-untyped-def]
    return float((response.header_value("server-timing") or "dur=nan").split("dur=")[1])


def reviewer_loop(url: str, flags_n: int, loops: int) -> None:
    """The reviewer's day in Chromium: queue -> flag -> decide -> next, `loops` times."""
    from playwright.sync_api import sync_playwright

    seed(url, flags_n)
    server = ServerProcess(url, sweep_interval_s=5.0, workers=1)
    steps: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("open queue", "open flag", "decide",
                                                                             "next flag")}

    def timed(step: str, action, predicate):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        with page.expect_response(predicate) as info:
            action()
        page.wait_for_load_state("load")
        steps[step][0].append(_server_ms(info.value))
        steps[step][1].append((time.perf_counter() - start) * 1000)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 900}).new_page()
            page.goto("/console/sign-in")
            page.fill("#username", "rev")
            page.fill("#password", PASSWORD)
            page.click("#sign-in")
            page.wait_for_url("**/console/todo")
            for _ in range(loops):
                timed("open queue", lambda: page.goto("/console/flags"),
                      lambda r: r.request.method == "GET" and "/console/flags" in r.url)
                timed("open flag", lambda: page.click("#flag-table tbody tr a.open >> nth=0"),
                      lambda r: r.request.method == "GET" and "/console/flags/" in r.url)
                page.check("#to-first_reviewed")
                page.select_option("#reason", "evidence_clear")
                page.fill("#comment", "bench")
                with page.expect_response(lambda r: r.request.method == "GET" and "reviewed=" in r.url) as after:
                    timed("decide", lambda: page.click("#submit-next"), lambda r: r.request.method == "POST")
                steps["next flag"][0].append(_server_ms(after.value))
                steps["next flag"][1].append(float("nan"))  # loaded with the decision: counted there
            browser.close()
    finally:
        server.stop()
    print(f"flags in database: {flags_n}; reviewer loops: {loops}; Chromium 1366x900")
    for step, (server_ms, browser_ms) in steps.items():
        (s50, s95) = _p50_p95(server_ms)
        seen = [b for b in browser_ms if b == b]
        shown = "browser p50 {:6.1f} ms p95 {:6.1f} ms".format(*_p50_p95(seen)) if seen else "(in decide)"
        print(f"{step:12s} server p50 {s50:6.1f} ms p95 {s95:6.1f} ms | {shown}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="sqlite")
    p.add_argument("--flags", type=int, default=5000)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--loop", type=int, default=0, help="time the reviewer's loop in Chromium this many times")
    a = p.parse_args()
    bench = (lambda url: reviewer_loop(url, a.flags, a.loop)) if a.loop else (lambda url: run(url, a.flags, a.requests))
    if a.db == "postgresql":
        from tests.fixtures.postgres import create_database, throwaway_cluster

        with throwaway_cluster() as admin:
            if admin is None:
                sys.exit("PostgreSQL binaries not found")
            bench(create_database(admin))
    else:
        url = a.db if "://" in a.db else f"sqlite:///{tempfile.mkdtemp(prefix='bedcheck-bench-')}/bench.db"
        bench(url)


if __name__ == "__main__":
    main()
