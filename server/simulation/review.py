"""The simulated review desk: a reviewer and a supervisor go through the spot check's flags over the HTTP API.

They decide from the seeded truth, as people would from the evidence: a flag that names a seeded fraud is sent
to final review and confirmed (which sets its refused funds by the agreement), any other is dismissed. Then the
confirmed cases and the money are compared with what the seeded truth says they should be.
"""

from __future__ import annotations

import secrets
from contextlib import closing
from datetime import datetime
from typing import Any

import httpx
from sqlmodel import Session, col, select

from models.verdicts import FlagKind
from server.accounts.service import create_user
from server.accounts.tables import Role, UserAccount
from server.admissions.tables import Admission
from server.flags.tables import Flag, FlagStatus
from server.funds.money import format_yuan
from server.localtime import days_between, local_date
from server.reports import service as report_service
from server.simulation.county import County, Truth

BED_HANGING = {Truth.BED_HANGING_EMPTY, Truth.BED_HANGING_NO_FACE, Truth.BED_HANGING_SILENT}
# Which flag kind names which seeded fraud.
# A bed nobody answered is overdue (not absent): the reviewer confirms a skipped bed from its overdue flag.
NAMES = {FlagKind.ABSENT: BED_HANGING, FlagKind.OVERDUE: {Truth.BED_HANGING_SILENT},
         FlagKind.IMPERSONATED: {Truth.IMPERSONATION}, FlagKind.SPOOF: {Truth.SPOOF},
         FlagKind.PLACE_MISMATCH: {Truth.CARRIED_HOME}}


def create_reviewers(db: Session) -> dict[str, str]:
    """Two people (the review needs two): username -> password, valid for this run only."""
    users = {}
    for username, role in (("sim-reviewer", Role.REVIEWER), ("sim-supervisor", Role.SUPERVISOR)):
        password = secrets.token_urlsafe(16)
        if db.exec(select(UserAccount).where(UserAccount.username == username)).first() is None:
            create_user(db, username=username, password=password, role=role)
            users[username] = password
    db.commit()
    return users


def _client(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=60)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": password})
    client.headers["authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
    return client


def is_seeded_fraud(county: County, kind: FlagKind, admission_id: int | None) -> bool:
    if admission_id is None or admission_id not in county.beds:
        return False
    if kind == FlagKind.INELIGIBLE:
        return admission_id in county.ineligible
    return county.beds[admission_id].truth in NAMES.get(kind, set())


def _dismissal_reason(kind: FlagKind) -> str:
    """The first dismissal reason that fits the kind (server/flags/workflow.py: no "false match" for an empty bed)."""
    from server.flags.workflow import DISMISSING, KIND_REASONS

    return KIND_REASONS.get(kind, (DISMISSING, DISMISSING))[1][0].value


def review_by_truth(base_url: str, county: County, users: dict[str, str]) -> int:
    """Reviews every open flag of the county's hospitals once; returns how many were decided."""
    hospitals = set(county.hospital_ids)
    with (closing(_client(base_url, "sim-reviewer", users["sim-reviewer"])) as reviewer,
          closing(_client(base_url, "sim-supervisor", users["sim-supervisor"])) as supervisor):
        flags, offset = [], 0
        while True:
            page = reviewer.get("/api/v1/flags", params={"status": "open", "limit": 500, "offset": offset}).json()
            flags += [f for f in page["items"] if f["hospital_id"] in hospitals]
            offset += 500
            if offset >= page["total"]:
                break
        for flag in flags:
            path = f"/api/v1/flags/{flag['id']}/transition"
            if is_seeded_fraud(county, FlagKind(flag["kind"]), flag["admission_id"]):
                why = "place_elsewhere" if flag["kind"] == FlagKind.PLACE_MISMATCH else "evidence_clear"
                reviewer.post(path, json={"to": "first_reviewed", "reason": why}).raise_for_status()
                supervisor.post(path, json={"to": "confirmed", "reason": why}).raise_for_status()
            else:  # a dismissal too is two people's: the first review proposes it, the final review decides
                why = _dismissal_reason(FlagKind(flag["kind"]))
                reviewer.post(path, json={"to": "recommend_dismiss", "reason": why}).raise_for_status()
                supervisor.post(path, json={"to": "dismissed", "reason": why}).raise_for_status()
    return len(flags)


def score_outcome(db: Session, county: County, *, reviewed_at: datetime) -> dict[str, Any]:
    """Confirmed cases and money, from the flags and from the report, against the seeded truth."""
    flags = list(db.exec(select(Flag).where(col(Flag.hospital_id).in_(county.hospital_ids))))
    confirmed = [f for f in flags if f.status == FlagStatus.CONFIRMED]
    seeded = {"bed_hanging": sum(b.truth in BED_HANGING for b in county.beds.values()),
              "impersonation": sum(b.truth == Truth.IMPERSONATION for b in county.beds.values()),
              "ineligible": len(county.ineligible),
              "place": sum(b.truth == Truth.CARRIED_HOME for b in county.beds.values())}
    found = {"bed_hanging": sum(f.kind in (FlagKind.ABSENT, FlagKind.OVERDUE) for f in confirmed),
             "impersonation": sum(f.kind == FlagKind.IMPERSONATED for f in confirmed),
             "ineligible": sum(f.kind == FlagKind.INELIGIBLE for f in confirmed),
             "place": sum(f.kind == FlagKind.PLACE_MISMATCH for f in confirmed)}
    expected = _expected_refused(db, county, reviewed_at)
    refused = sum(f.refused_fen or 0 for f in confirmed)
    today = local_date(reviewed_at)
    bureau = UserAccount(username="simulation", password_hash="", role=Role.SUPERVISOR)
    report = report_service.build(db, bureau, report_service.Period(today, today), full=False)
    in_report = [r for r in report.hospitals if r.hospital_id in set(county.hospital_ids)]
    report_refused = sum(r.refused_fen for r in in_report)
    return {"confirmed": found, "confirmed_seeded": seeded,
            "funds": {"refused_fen": refused, "deduction_fen": sum(f.deduction_fen or 0 for f in confirmed),
                      "expected_refused_fen": expected, "report_refused_fen": report_refused,
                      "refused": format_yuan(refused), "expected_refused": format_yuan(expected)},
            "bed_hanging_confirmed": sum(r.bed_hanging_confirmed for r in in_report),
            "summary_line": f"{sum(r.bed_hanging_confirmed for r in in_report)} bed-hanging cases confirmed, "
                            f"{format_yuan(report_refused)} refused"}


def _expected_refused(db: Session, county: County, at: datetime) -> int:
    """What the default agreement refuses for the seeded frauds: every billed day since admission (no verified
    presence before the check), once per admission, at the HIS's payment per day."""
    frauds = {a for a, b in county.beds.items() if b.truth in BED_HANGING | {Truth.IMPERSONATION}} | county.ineligible
    admitted = {a: at for a, at in db.exec(select(Admission.id, Admission.admitted_at)
                                           .where(col(Admission.id).in_(sorted(frauds))))}
    return sum(county.fund_per_day_fen[a] * days_between(admitted[a], at) for a in frauds)


