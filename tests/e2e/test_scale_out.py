"""Two server processes on one database judge a county exactly as one process does."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from server.audit.service import verify
from server.campaigns.tables import CheckTask
from server.db import make_engine
from server.flags.tables import Flag
from server.persons.tables import InsuredPerson
from server.simulation.county import CountySpec
from server.simulation.run import SimulationOptions, simulate
from tests.fixtures.postgres import create_database

SPEC = CountySpec(hospitals=3, public_hospitals=2, inpatients=240, beds_per_ward=20, bed_hanging_rate=0.05,
                  impersonation_rate=0.03, spoof_rate=0.02, exempt_rate=0.03, offline_wards=1, seed=5)


def _outcome(url: str) -> tuple[dict[str, str], list[tuple[str, str]], int]:
    """Per insured person: the verdict; the flags raised; and how many audit records the chain holds."""
    engine = make_engine(url)
    with Session(engine) as db:
        verdicts = {number: str(verdict) for number, verdict in db.exec(
            select(InsuredPerson.insurance_number, CheckTask.verdict)
            .join(CheckTask, CheckTask.insured_person_id == InsuredPerson.id))}
        flags = sorted((number, str(kind)) for number, kind in db.exec(
            select(InsuredPerson.insurance_number, Flag.kind).join(Flag, Flag.insured_person_id == InsuredPerson.id)))
        records, problems = verify(db)
    engine.dispose()
    assert problems == [], problems
    return verdicts, flags, records


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_server_processes_give_the_same_verdicts_as_one(backend: str, tmp_path: Path, request) -> None:
    outcomes = []
    for workers in (1, 2):
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'workers{workers}.db'}"
        else:
            url = create_database(request.getfixturevalue("postgres_admin_url"))
        summary = simulate(url, SPEC, SimulationOptions(deadline_s=60, offline_delay_s=1.0, server_workers=workers,
                                                        batch_size=7))
        assert summary["tasks"] == SPEC.inpatients and "pending" not in summary["verdicts"]
        outcomes.append(_outcome(url))
    (one_verdicts, one_flags, one_records), (two_verdicts, two_flags, two_records) = outcomes
    assert len(one_verdicts) == SPEC.inpatients
    assert two_verdicts == one_verdicts
    assert two_flags == one_flags and any(kind == "impersonated" for _, kind in one_flags)
    assert two_records == one_records
