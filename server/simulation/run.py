"""One simulated county spot check end to end: real server on loopback, one device per ward, the
one-command spot check, and the flags compared with the seeded truth."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, func, select

from models.faces.engines import EngineName
from models.settings import EngineSettings
from models.verdicts import FlagKind, Verdict
from server import lifecycle
from server.campaigns import service as campaign_service
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.db import db_scope, make_engine, upgrade, utcnow
from server.devices.service import create_pairing_code, pair_device
from server.flags.tables import Flag
from server.simulation.county import County, CountySpec, Truth, build_county
from server.simulation.fleet import DeviceFleet, DeviceSpec, FleetReport
from server.simulation.real_faces import RealFaces, attach_real_faces
from server.simulation.review import create_reviewers, review_by_truth, score_outcome

# A bed nobody answered is overdue, not absent (silence says nothing about the bed by itself); a reviewer
# confirms a skipped bed as bed-hanging from its overdue flag, so both kinds find it.
FRAUD_KINDS = {"bed_hanging": ({Truth.BED_HANGING_EMPTY, Truth.BED_HANGING_NO_FACE, Truth.BED_HANGING_SILENT},
                               {"absent", "overdue"}),
               "impersonation": ({Truth.IMPERSONATION}, {"impersonated"}),
               "spoof": ({Truth.SPOOF}, {"spoof"}),
               "place": ({Truth.CARRIED_HOME}, {"place_mismatch"})}


@dataclass
class SimulationOptions:
    deadline_s: int = 30
    offline_delay_s: float = 5.0
    sweep_interval_s: float = 0.5
    # Results per upload request: a device syncs its outbox in batches; 1 = one request per result.
    batch_size: int = 100
    server_workers: int = 2
    # Real photos for part of the county (see server/simulation/real_faces.py); None: synthetic only.
    faces_dir: Path | None = None
    # Devices already paired (as they are on the day of a spot check) instead of pairing over HTTP at start:
    # thousands of devices pairing in the same second measure the pairing burst, not the spot check.
    pre_paired: bool = False
    # Processes the simulated devices run in (threads of this one when 1); None: one per 500 devices.
    # See server/simulation/fleet.py.
    device_processes: int | None = None
    # After the spot check, a simulated reviewer and supervisor decide every flag over the API (see review.py),
    # so the summary carries confirmed cases and refused funds.
    review: bool = False
    port: int = 0  # the server's port; 0: any free one
    # The face engine of the server and of the real-photo beds (their enrollment, and the devices' checks);
    # None: the configured one (EngineSettings). A county enrolled on one engine can be checked on another
    # once `bedcheck enroll reencode` has re-embedded it (see `seed_counties` and `spot_check`).
    engine: EngineName | None = None
    # Evidence worker processes (`bedcheck evidence work`) beside the server, taking the evidence queue;
    # 0: the server's scheduler checks evidence itself, as a single server does.
    evidence_workers: int = 0
    # False with no evidence workers: nobody checks evidence during the run, and the summary does not wait for
    # it (a test runs its own workers afterwards).
    evidence_in_server: bool = True


class ServerProcess:
    """The real server in its own process (uvicorn), so simulated devices do not share its interpreter."""

    def __init__(self, db_url: str, sweep_interval_s: float, port: int = 0, workers: int = 2,
                 face_engine: EngineName | None = None, evidence_in_server: bool = True) -> None:
        import socket
        import subprocess
        import sys

        if port == 0:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = server_env(db_url, sweep_interval_s, face_engine)
        env["BEDCHECK_EVIDENCE_IN_SERVER"] = "true" if evidence_in_server else "false"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app_from_env", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--limit-concurrency", "20000", "--backlog", "4096",
             "--workers", str(workers),
             # uvicorn kills a worker that misses a 5 s health check; a saturated worker is busy, not dead.
             "--timeout-worker-healthcheck", "120"],
            # Its own session: a terminal's Ctrl-C reaches the command, which stops it in order (devices told
            # first, then this); `die_with_parent`: should the command be SIGKILLed, the server still goes.
            env=env, start_new_session=True, preexec_fn=lifecycle.die_with_parent)
        try:
            self._wait_ready()
        except BaseException:  # a Ctrl-C or SIGTERM while it starts too: nothing left running
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with code {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within a minute")

    def stop(self) -> None:
        """SIGTERM to the whole process group (uvicorn's workers too), SIGKILL if it is not gone in 10 s.

        Graceful shutdown waits for open long-polls; the group kill keeps workers from being orphaned.
        """
        stop_group(self.process)


def server_env(db_url: str, sweep_interval_s: float, face_engine: EngineName | None) -> dict[str, str]:
    """The environment of the simulation's server and evidence workers."""
    import os

    from server.audit.service import default_key

    # demo: simulated devices without real faces send labelled synthetic evidence (liveness declared
    # `simulated`), which only the demo and the test suite accept (server/checks/evidence.py,
    # ServerSettings.simulated_liveness_allowed). The server keys the audit chain as this process does (it
    # writes the county's records too): one chain, one key.
    env = {**os.environ, "BEDCHECK_ENVIRONMENT": "demo", "BEDCHECK_AUDIT_KEY": default_key().decode(),
           "BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_SWEEP_INTERVAL_S": str(sweep_interval_s),
           "BEDCHECK_ROLL_CALL_TIMES": "", "BEDCHECK_DEVICE_RATE_PER_S": "1000",
           "BEDCHECK_DEVICE_RATE_BURST": "5000"}
    if face_engine is not None:
        env["BEDCHECK_ENGINE_ENGINE"] = face_engine.value
    return env


def stop_group(process: Any, timeout_s: float = 10.0) -> None:
    """SIGTERM to a child's process group, SIGKILL after `timeout_s`."""
    import os
    import signal
    import subprocess

    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()


class EvidenceWorkers:
    """`bedcheck evidence work --processes N` in its own process group, as a second machine would run it."""

    def __init__(self, db_url: str, processes: int, face_engine: EngineName | None = None) -> None:
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "evidence", "work", "--processes", str(processes),
             "--idle-s", "0.3"],
            env=server_env(db_url, 1.0, face_engine), start_new_session=True, preexec_fn=lifecycle.die_with_parent)

    def stop(self) -> None:
        stop_group(self.process, timeout_s=20.0)


@dataclass
class SeededCounty:
    """What a spot check answers from: the counties' truth, the beds with real photos and the reviewers."""

    county: County
    real: RealFaces | None
    reviewers: dict[str, Any]
    seed: int


def simulate(db_url: str, spec: CountySpec | list[CountySpec], options: SimulationOptions,
             on_progress: Callable[[campaign_service.Progress], None] | None = None,
             base_url: str | None = None,
             while_serving: Callable[[dict[str, Any], str], None] | None = None) -> dict[str, Any]:
    """Builds the counties, runs one spot check over all of them against a server, returns the summary.

    With `while_serving`, it is called with the summary and the server's URL once the check is done, while
    the server and the simulated devices still run (the demo serves the console so: a check launched from
    the console is answered too); they stop when it returns or raises."""
    return spot_check(db_url, seed_counties(db_url, spec, options), options, on_progress, base_url, while_serving)


def seed_counties(db_url: str, spec: CountySpec | list[CountySpec], options: SimulationOptions) -> SeededCounty:
    """Builds the counties (real photos enrolled with `options.engine`); several spot checks can run on them."""
    specs = spec if isinstance(spec, list) else [spec]
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as db:
        county = merge([build_county(db, s, code_prefix=f"C{s.seed}-") for s in specs])
        real = (attach_real_faces(db, county, options.faces_dir, engine_settings=_engine_settings(options))
                if options.faces_dir else None)
        reviewers = create_reviewers(db) if options.review else {}
    engine.dispose()
    return SeededCounty(county, real, reviewers, specs[0].seed)


def spot_check(db_url: str, seeded: SeededCounty, options: SimulationOptions,
               on_progress: Callable[[campaign_service.Progress], None] | None = None,
               base_url: str | None = None,
               while_serving: Callable[[dict[str, Any], str], None] | None = None) -> dict[str, Any]:
    """One spot check of seeded counties against a server (started here unless `base_url` names one), the
    real-photo beds checked with `options.engine`: see `simulate`."""
    county, reviewers = seeded.county, seeded.reviewers
    engine = make_engine(db_url)
    with Session(engine, expire_on_commit=False) as db:
        codes = {w: create_pairing_code(db, ward_id=w, ttl_s=3600, actor="simulation") for w in county.ward_ids}
        tokens = ({w: pair_device(db, code=code, name="simulated")[1] for w, code in codes.items()}
                  if options.pre_paired else {})
    real = seeded.real.with_engine(_engine_settings(options)) if seeded.real else None
    server: ServerProcess | None = None
    fleet: DeviceFleet | None = None
    workers: EvidenceWorkers | None = None
    try:
        if base_url is None:
            if options.evidence_workers:
                workers = EvidenceWorkers(db_url, options.evidence_workers, face_engine=options.engine)
            server = ServerProcess(db_url, options.sweep_interval_s, port=options.port,
                                   workers=options.server_workers, face_engine=options.engine,
                                   evidence_in_server=options.evidence_in_server and not options.evidence_workers)
            base_url = server.url
        engine.dispose()  # forked device processes must not inherit this process's database connections
        fleet = DeviceFleet(base_url, county,
                            [DeviceSpec(w, code, tokens.get(w),
                                        options.offline_delay_s if w in county.offline_ward_ids else 0.0)
                             for w, code in codes.items()],
                            seed=seeded.seed, batch_size=options.batch_size, real=real,
                            processes=options.device_processes)
        summary = _run_campaign(engine, county, options, on_progress)
        if options.review:
            summary["flags_reviewed"] = review_by_truth(base_url, county, reviewers)
            with Session(engine) as db:
                summary.update(score_outcome(db, county, reviewed_at=utcnow()))
        summary["real_face_beds"] = len(real.beds) if real else 0
        if while_serving is not None:
            while_serving(summary, base_url)
    finally:
        # In this order on every way out (done, an error, Ctrl-C or SIGTERM: server/lifecycle.py): devices
        # told to stop, the server stopped (devices blocked in a long-poll return at once instead of after
        # its wait), then the device processes joined.
        if fleet is not None:
            fleet.signal_stop()
        if server is not None:
            server.stop()
        if workers is not None:
            workers.stop()
        report = fleet.stop() if fleet is not None else FleetReport()
    latencies = sorted(report.latencies_ms)
    summary["uploads"] = len(latencies)
    summary["upload_latency_ms"] = _percentiles(latencies)
    summary["device_errors"] = dict(Counter(report.errors))
    summary["device_processes"] = fleet.processes
    summary["real_face_beds"] = len(real.beds) if real else 0
    engine.dispose()
    return summary


def _engine_settings(options: SimulationOptions) -> EngineSettings:
    """The engine settings the server loads (calibration file included), on `options.engine` when set."""
    return EngineSettings.load(**({"engine": options.engine} if options.engine else {}))


def _run_campaign(engine: Any, county: County, options: SimulationOptions,
                  on_progress: Callable[[campaign_service.Progress], None] | None) -> dict[str, Any]:
    started = time.perf_counter()
    with db_scope(engine) as db:
        campaign = campaign_service.create_campaign(db, hospital_ids=county.hospital_ids,
                                                    deadline_s=options.deadline_s, actor="simulation",
                                                    scope={"counties": county.county_name})
    campaign_id = campaign.id or 0
    while True:
        with Session(engine) as db:
            progress = campaign_service.progress(db, campaign_id=campaign_id)
        if on_progress:
            on_progress(progress)
        if progress.status == "completed":
            break
        time.sleep(0.25)
    seconds = time.perf_counter() - started
    checked = options.evidence_workers or options.evidence_in_server
    evidence_seconds = _wait_for_evidence(engine, campaign_id) if checked else 0.0
    aggregate_started = time.perf_counter()
    with Session(engine) as db:
        final = campaign_service.progress(db, campaign_id=campaign_id)
        aggregate_ms = (time.perf_counter() - aggregate_started) * 1000
        flags = list(db.exec(select(Flag.admission_id, Flag.kind).where(Flag.campaign_id == campaign_id)))
        # Eligibility is flagged at import, not by the check: the county's ineligible flags count.
        flags += list(db.exec(select(Flag.admission_id, Flag.kind).where(
            Flag.kind == FlagKind.INELIGIBLE, col(Flag.hospital_id).in_(county.hospital_ids))))
        on_leave = set(db.exec(select(CheckTask.admission_id).where(CheckTask.campaign_id == campaign_id,
                                                                    CheckTask.verdict == Verdict.ON_LEAVE)))
    return {"campaign_id": campaign_id, "inpatients": len(county.beds), "hospitals": len(county.hospital_ids),
            "wards": len(county.ward_ids), "offline_wards": len(county.offline_ward_ids),
            "verdicts": {k: v for k, v in final.counts.items() if v}, "tasks": final.total,
            "seconds_to_complete": round(seconds, 2), "aggregate_query_ms": round(aggregate_ms, 1),
            "evidence_seconds_after": round(evidence_seconds, 2),
            "verified_flagged_for_place": len({a for a in _verified_flagged_for_place(engine, campaign_id)
                                               if county.beds[a].truth != Truth.CARRIED_HOME}),
            "verification_rate": round(final.verification_rate, 4),
            "results_per_second": round((final.total - final.counts.get("exempt", 0)) / seconds, 1),
            **_score(county, flags, on_leave)}


def _wait_for_evidence(engine: Any, campaign_id: int, timeout_s: float = 600.0) -> float:
    """Waits for the server's evidence check (place, replays...) to reach every result of the campaign:
    its flags come a few seconds after the verdicts and are scored with them."""
    started = time.perf_counter()
    query = (select(func.count()).select_from(CheckResult)
             .join(CheckTask, col(CheckTask.id) == col(CheckResult.task_id))
             .where(CheckTask.campaign_id == campaign_id, col(CheckResult.evidence_checked_at).is_(None)))
    while time.perf_counter() - started < timeout_s:
        with Session(engine) as db:
            if not db.exec(query).one():
                break
        time.sleep(0.5)
    return time.perf_counter() - started


def _verified_flagged_for_place(engine: Any, campaign_id: int) -> list[int]:
    """Admissions of verified checks with a place_mismatch flag (only the tablets carried home should be)."""
    with Session(engine) as db:
        return [int(a) for a in db.exec(select(CheckTask.admission_id)
                                        .join(Flag, col(CheckTask.id) == col(Flag.task_id))
                                        .where(Flag.campaign_id == campaign_id, Flag.kind == FlagKind.PLACE_MISMATCH,
                                               CheckTask.verdict == Verdict.VERIFIED))]


def merge(counties: list[County]) -> County:
    """Several simulated counties as one scope (a province-level spot check)."""
    if len(counties) == 1:
        return counties[0]
    merged = County(", ".join(c.county_name for c in counties), [], [], set())
    for c in counties:
        merged.hospital_ids += c.hospital_ids
        merged.ward_ids += c.ward_ids
        merged.offline_ward_ids |= c.offline_ward_ids
        merged.beds.update(c.beds)
        merged.identities.update(c.identities)
        merged.ineligible |= c.ineligible
        merged.fund_per_day_fen.update(c.fund_per_day_fen)
    return merged


def _score(county: County, flags: list[tuple[int | None, Any]], on_leave: set[int]) -> dict[str, Any]:
    """Precision and recall against the seeded truth: of the flags per fraud kind, of the ineligible flags
    and of the on_leave verdicts."""
    flagged: dict[str, set[int]] = {"on_leave": on_leave}
    for admission_id, kind in flags:
        if admission_id is not None:
            flagged.setdefault(str(getattr(kind, "value", kind)), set()).add(admission_id)
    precision, recall, seeded = {}, {}, {}
    targets = {name: ({a for a, bed in county.beds.items() if bed.truth in truths}, kinds)
               for name, (truths, kinds) in FRAUD_KINDS.items()}
    targets["ineligible"] = (set(county.ineligible), {"ineligible"})
    targets["on_leave"] = ({a for a, bed in county.beds.items() if bed.truth == Truth.ON_LEAVE}, {"on_leave"})
    for name, (actual, kinds) in targets.items():
        found = set().union(*(flagged.get(k, set()) for k in kinds))
        seeded[name] = len(actual)
        recall[name] = round(len(actual & found) / len(actual), 4) if actual else 1.0
        precision[name] = round(len(actual & found) / len(found), 4) if found else (1.0 if not actual else 0.0)
    # Genuine patients in their beds whose face sent them to a reviewer (impersonated or unrecognised): the cost
    # of the matching threshold to honest patients (issue 28: at most 0.5 %).
    present = {a for a, bed in county.beds.items() if bed.truth == Truth.PRESENT}
    for_face = present & (flagged.get("impersonated", set()) | flagged.get("unrecognised", set()))
    review = {"present": len(present), "sent": len(for_face),
              "rate": round(len(for_face) / len(present), 4) if present else 0.0}
    return {"seeded": seeded, "precision": precision, "recall": recall, "genuine_sent_to_review_for_face": review}


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 1)
    return {"p50": at(0.50), "p99": at(0.99), "mean": round(statistics.fmean(values), 1)}
