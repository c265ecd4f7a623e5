"""Report benchmark: the statistics page and the period report over a year of a 46-hospital county.

    .venv/bin/python scripts/bench_reports.py [--db sqlite|postgresql|URL] [--inpatients 5000] [--days 365]
        [--checks-per-day 2] [--requests 30]

Seeds a year as a county lives it: every bed occupied by consecutive stays of 3 to 17 days, two roll-calls a
day checking every inpatient (about 3.6 million check tasks), a flag for each check that was not verified,
reviewed (confirmed with its refused amount, dismissed, appealed, upheld). Then starts the real server (one
uvicorn worker), signs in through the console form and times the statistics page (this year, monthly and
quarterly trend: goal < 300 ms) and the quarterly report (inpatients, money, previous quarter: goal < 1 s) and
the year's report, by the server's own time (Server-Timing: queries and rendering) and over loopback. The
first request of the day rolls the settled days up into the daily tally; its time is printed apart.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select  # noqa: E402

from models.verdicts import FlagKind, Verdict  # noqa: E402
from scripts.bench_console import PASSWORD, signed_in, time_page  # noqa: E402
from server.accounts.service import create_user  # noqa: E402
from server.accounts.tables import Role  # noqa: E402
from server.admissions.tables import Admission  # noqa: E402
from server.campaigns.tables import Campaign, CampaignKind, CampaignStatus, CheckTask  # noqa: E402
from server.db import db_scope, make_engine, upgrade  # noqa: E402
from server.flags.tables import Flag, FlagStatus, Review  # noqa: E402
from server.hospitals import service as hospitals  # noqa: E402
from server.hospitals.tables import Bed, HospitalKind, Ward  # noqa: E402
from server.localtime import LOCAL_TZ  # noqa: E402
from server.persons.tables import InsuredPerson  # noqa: E402
from server.simulation.run import ServerProcess  # noqa: E402

HOSPITALS = 46
# Share of checks per verdict over a year (verified most; the rest raise flags or are excused).
VERDICTS = [(Verdict.VERIFIED, 0.955), (Verdict.ABSENT, 0.02), (Verdict.IMPERSONATED, 0.004), (Verdict.SPOOF, 0.001),
            (Verdict.EXEMPT, 0.012), (Verdict.ON_LEAVE, 0.003), (Verdict.OVERDUE, 0.005)]
FLAGGED = {Verdict.ABSENT: FlagKind.ABSENT, Verdict.IMPERSONATED: FlagKind.IMPERSONATED, Verdict.SPOOF: FlagKind.SPOOF,
           Verdict.OVERDUE: FlagKind.OVERDUE}
CHUNK = 5000


def _bulk(db, table, rows: list[dict]) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(rows), CHUNK):
        db.execute(insert(table), rows[start:start + CHUNK])


def seed(url: str, inpatients: int, days: int, checks_per_day: int) -> dict[str, int]:
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(19)
    today = datetime.now(LOCAL_TZ).date()
    first = today - timedelta(days=days - 1)
    counts: dict[str, int] = {}
    with db_scope(engine) as db:
        county = hospitals.get_or_create_county(db, province="P", city="C", county="Bench County")
        ids = [hospitals.upsert_hospital(db, code=f"B{h:02d}", name=f"第{h + 1}人民医院", county_id=county.id or 0,
                                         kind=HospitalKind.PUBLIC if h < 28 else HospitalKind.PRIVATE).id or 0
               for h in range(HOSPITALS)]
        beds: list[tuple[int, int, int]] = []
        for i, hid in enumerate(ids):
            n = inpatients // HOSPITALS + (1 if i < inpatients % HOSPITALS else 0)
            for w in range(0, n, 30):
                ward = Ward(hospital_id=hid, code=f"W{w // 30 + 1:02d}")
                db.add(ward)
                db.flush()
                _bulk(db, Bed, [{"ward_id": ward.id, "label": f"{b + 1:02d}"} for b in range(min(30, n - w))])
                bed_ids = db.exec(select(Bed.id).where(Bed.ward_id == ward.id)).scalars()
                beds += [(hid, ward.id or 0, b) for b in bed_ids]
        stays = []  # (hospital, ward, bed, admitted local date, discharge local date)
        for hid, wid, bid in beds:
            day = first - timedelta(days=rng.randrange(0, 10))
            while day <= today:
                length = rng.randrange(3, 18)
                stays.append((hid, wid, bid, day, day + timedelta(days=length)))
                day += timedelta(days=length)
        now = datetime.now(UTC)
        _bulk(db, InsuredPerson, [{"insurance_number": f"BENCH{i:08d}", "name": f"患者{i}", "created_at": now,
                                   "insurance_type": ""} for i in range(len(stays))])
        person_ids = list(db.exec(select(InsuredPerson.id).order_by(InsuredPerson.id)).scalars())
        at = lambda d, hour=10: datetime(d.year, d.month, d.day, hour, tzinfo=LOCAL_TZ).astimezone(UTC)  # noqa: E731
        _bulk(db, Admission, [{"insured_person_id": pid, "hospital_id": h, "ward_id": w, "bed_id": b,
                               "his_admission_no": f"A{i:08d}", "admitted_at": at(a),
                               "discharged_at": at(d) if d <= today else None,
                               "fund_per_day_fen": 100 * rng.randrange(80, 600)}
                              for i, (pid, (h, w, b, a, d)) in enumerate(zip(person_ids, stays, strict=True))])
        admissions = list(db.exec(select(Admission.id, Admission.admitted_at, Admission.discharged_at,
                                         Admission.hospital_id, Admission.ward_id, Admission.bed_id,
                                         Admission.insured_person_id, Admission.fund_per_day_fen)).all())
        counts.update(hospitals=len(ids), beds=len(beds), admissions=len(admissions))
        create_user(db, username="sup", password=PASSWORD, role=Role.SUPERVISOR)
        create_user(db, username="staff", password=PASSWORD, role=Role.HOSPITAL_STAFF, hospital_id=ids[0])
    tasks = flags = 0
    weights = [w for _, w in VERDICTS]
    by_day: dict[date, list] = {}
    for row in admissions:
        start = row.admitted_at.astimezone(LOCAL_TZ).date()
        end = row.discharged_at.astimezone(LOCAL_TZ).date() if row.discharged_at else today
        for i in range((min(end, today) - max(start, first)).days):
            by_day.setdefault(max(start, first) + timedelta(days=i), []).append(row)
    for day in sorted(by_day):
        with db_scope(engine) as db:
            for hour in [8, 20][:checks_per_day]:
                issued = datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_TZ).astimezone(UTC)
                campaign = Campaign(kind=CampaignKind.ROLL_CALL, created_by="bench", created_at=issued,
                                    deadline_at=issued + timedelta(minutes=20), completed_at=issued,
                                    status=CampaignStatus.COMPLETED, task_count=len(by_day[day]))
                db.add(campaign)
                db.flush()
                verdicts = rng.choices([v for v, _ in VERDICTS], weights, k=len(by_day[day]))
                rows = [{"campaign_id": campaign.id, "admission_id": a.id, "insured_person_id": a.insured_person_id,
                         "hospital_id": a.hospital_id, "ward_id": a.ward_id, "bed_id": a.bed_id,
                         "nonce": f"{campaign.id}-{a.id}", "issued_at": issued, "deadline_at": issued,
                         "verdict": v, "verdict_at": issued, "late": False}
                        for a, v in zip(by_day[day], verdicts, strict=True)]
                _bulk(db, CheckTask, rows)
                tasks += len(rows)
                flag_rows = []
                for a, v in zip(by_day[day], verdicts, strict=True):
                    if v not in FLAGGED:
                        continue
                    status = rng.choices([FlagStatus.CONFIRMED, FlagStatus.DISMISSED, FlagStatus.OPEN], [6, 3, 1])[0]
                    refused = (a.fund_per_day_fen or 0) * 2 if status == FlagStatus.CONFIRMED and v != Verdict.SPOOF \
                        and v != Verdict.OVERDUE else None
                    flag_rows.append({"kind": FLAGGED[v], "status": status, "hospital_id": a.hospital_id,
                                      "campaign_id": campaign.id, "admission_id": a.id, "details": {},
                                      "created_at": issued, "updated_at": issued, "refused_fen": refused,
                                      "deduction_fen": refused})
                _bulk(db, Flag, flag_rows)
                flags += len(flag_rows)
            _appeals(db, rng, day)
    counts.update(tasks=tasks, flags=flags)
    engine.dispose()
    return counts


def _appeals(db, rng: random.Random, day: date) -> None:  # type: ignore[no-untyped-def]
    """One flag in twenty of the day appealed; half of those upheld (set to zero), as the review would."""
    start = datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ).astimezone(UTC)
    ids = list(db.exec(select(Flag.id).where(Flag.created_at >= start, Flag.created_at < start + timedelta(days=1),
                                             Flag.status == FlagStatus.CONFIRMED)).scalars())
    reviews = []
    for fid in rng.sample(ids, len(ids) // 20):
        reviews.append({"flag_id": fid, "from_status": FlagStatus.CONFIRMED, "to_status": FlagStatus.APPEALED,
                        "reason": "appeal", "actor": "staff", "created_at": start})
        if rng.random() < 0.5:
            reviews.append({"flag_id": fid, "from_status": FlagStatus.APPEALED, "to_status": FlagStatus.DISMISSED,
                            "reason": "appeal_accepted", "actor": "sup", "created_at": start})
    _bulk(db, Review, reviews)


def run(url: str, a: argparse.Namespace) -> None:
    started = time.perf_counter()
    counts = seed(url, a.inpatients, a.days, a.checks_per_day)
    print(f"seeded in {time.perf_counter() - started:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    server = ServerProcess(url, sweep_interval_s=60.0, workers=1)
    today = datetime.now(LOCAL_TZ).date()
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    year_ago = today - timedelta(days=a.days - 1)
    try:
        sup, staff = signed_in(server.url, "sup"), signed_in(server.url, "staff")
        start = time.perf_counter()
        first = sup.get("/console/statistics")
        first.raise_for_status()
        print(f"first request (rolls {a.days} days up into the tally): {(time.perf_counter() - start) * 1000:.0f} ms "
              f"(server {first.headers['server-timing'].split('dur=')[1]} ms)")
        variants = [("statistics, year to date (county)", sup, f"/console/statistics?from={year_ago}&to={today}"),
                    ("statistics, one hospital", sup, "/console/statistics?hospital_id=1"),
                    ("report, this quarter + previous", sup, f"/console/reports?from={quarter_start}&to={today}"),
                    ("report, whole year + previous year", sup, f"/console/reports?from={year_ago}&to={today}"),
                    ("report, year, hospital staff (scoped)", staff, f"/console/reports?from={year_ago}&to={today}"),
                    ("report Excel, year", sup, f"/console/reports/report.xlsx?from={year_ago}&to={today}")]
        print(f"requests per variant: {a.requests}")
        for name, client, path in variants:
            (p50, p99), (s50, s99), size = time_page(client, path, a.requests)
            print(f"{name:40s} request p50 {p50:6.1f} ms p99 {p99:6.1f} ms | server p50 {s50:6.1f} ms "
                  f"p99 {s99:6.1f} ms ({size / 1024:.0f} KiB)")
        sup.close()
        staff.close()
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", default="sqlite")
    p.add_argument("--inpatients", type=int, default=5000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--checks-per-day", type=int, default=2, choices=(1, 2))
    p.add_argument("--requests", type=int, default=30)
    a = p.parse_args()
    if a.db == "postgresql":
        from tests.fixtures.postgres import create_database, throwaway_cluster

        with throwaway_cluster() as admin:
            if admin is None:
                sys.exit("PostgreSQL binaries not found")
            run(create_database(admin), a)
    else:
        url = a.db if "://" in a.db else f"sqlite:///{tempfile.mkdtemp(prefix='bedcheck-bench-')}/bench.db"
        run(url, a)


if __name__ == "__main__":
    main()
