"""The report counts the same from the daily tally as from the tasks, and puts days in their local month."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import Session

from models.verdicts import FlagKind, Verdict
from server.accounts.tables import Role, UserAccount
from server.campaigns.tables import Campaign, CampaignKind, CampaignStatus, CheckTask
from server.flags.tables import Flag, FlagStatus
from server.localtime import LOCAL_TZ
from server.reports import rollup, service
from tests import factories

BUREAU = UserAccount(username="bureau", password_hash="", role=Role.SUPERVISOR)


def _seed(db: Session) -> tuple[list[datetime], factories.World]:
    world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b", "c"])
    now = datetime.now(UTC)
    # 00:30 local on the 1st of last month is still the last day of the month before in UTC: local days count.
    this_month = datetime.now(LOCAL_TZ).replace(day=1, hour=0, minute=30, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    times = [last_month.astimezone(UTC), (this_month - timedelta(days=20)).astimezone(UTC), now - timedelta(hours=1)]
    verdicts = [Verdict.VERIFIED, Verdict.ABSENT, Verdict.ON_LEAVE]
    for n, issued in enumerate(times):
        campaign = Campaign(kind=CampaignKind.ROLL_CALL, created_by="test", created_at=issued, deadline_at=issued,
                            status=CampaignStatus.COMPLETED, completed_at=issued)
        db.add(campaign)
        db.flush()
        tasks = [{"campaign_id": campaign.id, "admission_id": p.admission_id, "insured_person_id": p.person_id,
                  "hospital_id": p.hospital_id, "ward_id": p.ward_id, "bed_id": p.bed_id, "nonce": f"{n}-{key}",
                  "issued_at": issued, "deadline_at": issued, "verdict": verdicts[i % 3], "verdict_at": issued,
                  "late": False} for i, (key, p) in enumerate(sorted(world.patients.items()))]
        db.execute(insert(CheckTask), tasks)
        absent = [p for i, (_, p) in enumerate(sorted(world.patients.items())) if verdicts[i % 3] == Verdict.ABSENT]
        db.execute(insert(Flag), [{"kind": FlagKind.ABSENT, "status": FlagStatus.CONFIRMED,
                                   "hospital_id": p.hospital_id, "campaign_id": campaign.id,
                                   "admission_id": p.admission_id, "details": {},
                                   "created_at": issued, "updated_at": issued, "refused_fen": 1000 * (n + 1),
                                   "deduction_fen": 0} for p in absent])
    db.commit()
    return times, world


def _figures(report: service.Report) -> list[tuple]:
    rows = [*report.hospitals, report.total, *[p.row for p in report.months + report.quarters]]
    return [(r.checks, r.verified, r.excused, r.confirmed, r.refused_fen, dict(r.flags)) for r in rows]


def test_tally_and_live_counts_agree_and_days_fall_in_their_local_month(db: Session) -> None:
    times, world = _seed(db)
    first = times[0].astimezone(LOCAL_TZ).date()
    period = service.Period(first, datetime.now(LOCAL_TZ).date())
    live = service.build(db, BUREAU, period, full=True)
    assert rollup.refresh(db, now=datetime.now(UTC)) > 0 and rollup.rolled_through(db) is not None
    tallied = service.build(db, BUREAU, period, full=True)
    assert _figures(tallied) == _figures(live)
    assert (live.total.checks, live.total.verified, live.total.excused, live.total.confirmed) == (18, 6, 6, 6)
    assert live.total.refused_fen == 2 * (1000 + 2000 + 3000) and live.total.pass_rate == 0.5
    by_month = {p.label: p.row.checks for p in live.months if p.row.checks}
    expected = Counter(f"{t.astimezone(LOCAL_TZ):%Y-%m}" for t in times)
    assert by_month == {month: 6 * n for month, n in expected.items()}
    assert times[0].date() < first  # the UTC day before: counted in the local month it belongs to
    assert rollup.refresh(db, now=datetime.now(UTC)) == 0  # nothing new to roll up
