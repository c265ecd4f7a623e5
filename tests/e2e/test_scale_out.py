"""Two server processes on one database judge a county exactly as one process does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select

from server.audit.service import verify
from server.campaigns.tables import CheckTask
from server.db import make_engine
from server.evidence import queue as evidence_queue
from server.flags.tables import Flag
from server.persons.tables import InsuredPerson
from server.simulation.county import CountySpec
from server.simulation.run import SimulationOptions, server_env, simulate, stop_group
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


# --- evidence workers (server/evidence/workers.py) ------------------------------------------------------------
_reference: dict[str, tuple[dict[str, str], list[tuple[str, str]], int]] = {}


def _url(backend: str, path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{path}"
    return create_database(request.getfixturevalue("postgres_admin_url"))


def _reference_outcome(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[dict[str, str], list[
        tuple[str, str]], int]:
    """The county judged by one server process that checks evidence itself (its scheduler), once per backend."""
    if backend not in _reference:
        url = _url(backend, tmp_path / "reference.db", request)
        simulate(url, SPEC, SimulationOptions(deadline_s=60, offline_delay_s=1.0, server_workers=1, batch_size=7))
        _reference[backend] = _outcome(url)
    return _reference[backend]


def _flags_and_verdicts(url: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    verdicts, flags, _ = _outcome(url)
    return verdicts, flags


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_evidence_workers_in_their_own_processes_give_the_same_verdicts_and_flags(backend: str, tmp_path: Path,
                                                                                    request) -> None:
    reference_verdicts, reference_flags, _ = _reference_outcome(backend, tmp_path, request)
    url = _url(backend, tmp_path / "workers.db", request)
    # `bedcheck evidence work --processes 2` beside a server that checks no evidence itself.
    summary = simulate(url, SPEC, SimulationOptions(deadline_s=60, offline_delay_s=1.0, server_workers=1,
                                                    batch_size=7, evidence_workers=2))
    assert summary["tasks"] == SPEC.inpatients and "pending" not in summary["verdicts"]
    engine = make_engine(url)
    with Session(engine) as db:
        checked = evidence_queue.progress(db)
    engine.dispose()
    assert checked.done and checked.total > 0 and checked.in_hand == 0
    verdicts, flags = _flags_and_verdicts(url)
    assert verdicts == reference_verdicts
    assert flags == reference_flags
    assert any(kind == "place_mismatch" for _, kind in flags)  # evidence findings are among them


def _start_workers(url: str, processes: int, lease_s: float) -> subprocess.Popen[bytes]:
    env = {**server_env(url, 1.0, None), "BEDCHECK_EVIDENCE_LEASE_S": str(lease_s)}
    return subprocess.Popen([sys.executable, "-m", "server.cli", "evidence", "work", "--processes", str(processes),
                             "--batch", "1000", "--idle-s", "0.2"], env=env, start_new_session=True)


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_nothing_another_takes_its_results(tmp_path: Path, request) -> None:
    reference_verdicts, reference_flags, _ = _reference_outcome("sqlite", tmp_path, request)
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    summary = simulate(url, SPEC, SimulationOptions(deadline_s=60, offline_delay_s=1.0, server_workers=1,
                                                    batch_size=7, evidence_in_server=False))
    assert summary["tasks"] == SPEC.inpatients
    engine = make_engine(url)

    def progress() -> evidence_queue.EvidenceProgress:
        with Session(engine) as db:
            return evidence_queue.progress(db)

    assert progress().checked == 0 and progress().total > 0
    # One worker claims the whole queue in one batch; SIGKILL while it judges it (no way out runs).
    first = _start_workers(url, 1, lease_s=4.0)
    try:
        deadline = time.monotonic() + 120
        while progress().in_hand == 0:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed = progress()
    assert killed.in_hand > 0 and not killed.done  # its claims outlive it, unchecked
    second = _start_workers(url, 2, lease_s=4.0)
    try:
        deadline = time.monotonic() + 180
        while not progress().done:
            assert time.monotonic() < deadline and second.poll() is None
            time.sleep(0.3)
    finally:
        stop_group(second, timeout_s=20)
    assert progress().in_hand == 0
    engine.dispose()
    verdicts, flags = _flags_and_verdicts(url)
    assert verdicts == reference_verdicts
    assert flags == reference_flags
