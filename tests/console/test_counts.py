"""One count of each thing: a county seeded with superseded, late, overdue and appealed flags reads the same on
the dashboard, the queue (page, CSV, Excel), the statistics page, the period report, its print page and its
Excel, for every kind, for a supervisor and for a hospital's staff (through the real server)."""

from __future__ import annotations

import csv
import io
import re
from contextlib import closing
from datetime import datetime, timedelta

import httpx
from openpyxl import load_workbook
from sqlmodel import Session, select

from models.verdicts import FlagKind, Verdict
from server.campaigns.service import create_campaign
from server.campaigns.tables import CheckTask
from server.db import utcnow
from server.flags.tables import Flag, FlagStatus, Review
from server.localtime import LOCAL_TZ
from tests.console import helpers
from tests.console.helpers import sign_in

S = FlagStatus
# (hospital index, kind, status, the statuses it went through before) per seeded flag.
SEED = [
    (0, FlagKind.OVERDUE, S.OPEN, []),
    (0, FlagKind.OVERDUE, S.SUPERSEDED, []),
    (0, FlagKind.LATE, S.OPEN, []),
    (0, FlagKind.ABSENT, S.APPEALED, [S.OPEN, S.FIRST_REVIEWED]),
    (0, FlagKind.IMPERSONATED, S.DISMISSED, [S.OPEN, S.FIRST_REVIEWED, S.CONFIRMED, S.APPEALED]),
    (1, FlagKind.OVERDUE, S.FIRST_REVIEWED, [S.OPEN]),
    (1, FlagKind.OVERDUE, S.SUPERSEDED, []),
    (1, FlagKind.OVERDUE, S.SUPERSEDED, [S.OPEN]),
    (1, FlagKind.OVERDUE, S.CONFIRMED, [S.OPEN, S.FIRST_REVIEWED]),
    (1, FlagKind.LATE, S.CONFIRMED, [S.OPEN, S.FIRST_REVIEWED]),
    (1, FlagKind.DEVICE_OFFLINE, S.OPEN, []),
    (1, FlagKind.SPOOF, S.APPEALED, [S.OPEN, S.FIRST_REVIEWED, S.CONFIRMED]),
]
OPEN = {S.OPEN, S.FIRST_REVIEWED, S.APPEALED}


def _seed(engine, world) -> int:
    with Session(engine, expire_on_commit=False) as db:
        campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
        tasks = list(db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id).order_by(CheckTask.id)))
        by_hospital = {h: [t for t in tasks if t.hospital_id == h] for h in world.hospital_ids}
        for n, (h, kind, status, path) in enumerate(SEED):
            hospital_id = world.hospital_ids[h]
            task = by_hospital[hospital_id][n % len(by_hospital[hospital_id])]
            flag = Flag(kind=kind, status=status, hospital_id=hospital_id, campaign_id=campaign.id, task_id=task.id,
                        admission_id=task.admission_id, insured_person_id=task.insured_person_id, details={})
            db.add(flag)
            db.flush()
            steps = [*path, status]
            for before, after in zip(steps, steps[1:], strict=False):
                db.add(Review(flag_id=flag.id, from_status=before, to_status=after, reason="other: seeded",
                              actor="seed"))
        for task in tasks:
            task.verdict = Verdict.OVERDUE
            db.add(task)
        # The check is over: hospitals may see it.
        campaign.deadline_at = utcnow() - timedelta(seconds=1)
        db.add(campaign)
        db.commit()
        return campaign.id


def _expected(hospitals: set[int] | None = None) -> dict[str, tuple[int, int]]:
    """kind -> (raised, open), counted from the seed by the definition: superseded flags do not count."""
    out: dict[str, list[int]] = {}
    for h, kind, status, _ in SEED:
        if status == S.SUPERSEDED or (hospitals is not None and h not in hospitals):
            continue
        counts = out.setdefault(kind.value, [0, 0])
        counts[0] += 1
        counts[1] += status in OPEN
    return {k: (v[0], v[1]) for k, v in out.items()}


def _dashboard(client: httpx.Client, campaign_id: int) -> dict[str, tuple[int, int]]:
    page = client.get("/console/dashboard", params={"campaign_id": campaign_id})
    assert page.status_code == 200
    table = page.text.split('id="flag-counts"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'data-kind="(\w+)".*?data-field="raised"[^>]*>(\d+)<.*?data-field="open"[^>]*>(\d+)<',
                      table, re.S)
    return {k: (int(r), int(o)) for k, r, o in rows}


def _queue_total(client: httpx.Client, **params: object) -> int:
    page = client.get("/console/flags", params=params)
    assert page.status_code == 200
    found = re.search(r'id="flag-total">(\d+)<', page.text)
    assert found
    return int(found.group(1))


def _report_kinds(html: str) -> dict[str, int]:
    total = html.split('id="total-row"', 1)[1].split("</tr>", 1)[0]
    return {k: int(n) for k, n in re.findall(r'data-kind="(\w+)"[^>]*>(\d+)<', total)}


def _excel_kinds(body: bytes, labels: dict[str, str]) -> dict[str, int]:
    rows = list(load_workbook(io.BytesIO(body))["分医院"].iter_rows(values_only=True))
    header, total = rows[0], rows[-1]
    return {kind: int(total[header.index(label)]) for kind, label in labels.items() if label in header}


def _export_rows(client: httpx.Client, fmt: str, **params: object) -> int:
    response = client.get(f"/console/exports/flags.{fmt}", params=params)
    assert response.status_code == 200
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        return len(rows) - 2  # header and totals row
    sheet = load_workbook(io.BytesIO(response.content)).active
    return sheet.max_row - 2


def _check_all_agree(client: httpx.Client, campaign_id: int, expected: dict[str, tuple[int, int]]) -> None:
    from server.console.i18n import TEXT  # noqa: PLC0415  (the labels a person reads)

    today = datetime.now(LOCAL_TZ).date().isoformat()
    assert _dashboard(client, campaign_id) == expected
    for kind, (raised, open_) in expected.items():
        assert _queue_total(client, campaign_id=campaign_id, kind=kind, status="") == raised, kind
        assert _queue_total(client, campaign_id=campaign_id, kind=kind, status="actionable") == open_, kind
        assert _export_rows(client, "csv", campaign_id=campaign_id, kind=kind, status="") == raised, kind
        assert _export_rows(client, "xlsx", campaign_id=campaign_id, kind=kind, status="") == raised, kind
    raised = {k: r for k, (r, _) in expected.items()}
    period = {"from": today, "to": today}
    assert _report_kinds(client.get("/console/statistics", params=period).text) == raised
    assert _report_kinds(client.get("/console/reports", params=period).text) == raised
    assert _report_kinds(client.get("/console/reports/print", params=period).text) == raised
    labels = {k: TEXT[k][0] for k in raised}
    assert _excel_kinds(client.get("/console/reports/report.xlsx", params=period).content, labels) == raised


def test_every_page_and_export_counts_each_flag_kind_the_same_and_never_a_superseded_flag(engine, live_server) -> None:
    with Session(engine, expire_on_commit=False) as db:
        world = helpers.build(db)
    campaign_id = _seed(engine, world)
    server = live_server()
    with closing(sign_in(server.url, "sup")) as sup:
        expected = _expected()
        assert expected["overdue"] == (3, 2)  # three superseded overdue flags are not 超时未答
        _check_all_agree(sup, campaign_id, expected)
        # Superseded flags stay reachable by their status, never in a count.
        assert _queue_total(sup, campaign_id=campaign_id, kind="overdue", status="superseded") == 3
    with closing(sign_in(server.url, "staff1")) as staff:
        _check_all_agree(staff, campaign_id, _expected({0}))
