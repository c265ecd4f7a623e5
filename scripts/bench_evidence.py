"""Server CPU per evidence check, by step: a simulated county's results judged by one evidence worker.

    .venv/bin/python scripts/bench_evidence.py [--inpatients 300] [--hospitals 3]

Builds the county on a throwaway SQLite file and runs its spot check with nobody checking evidence, then
judges the stored results in this process under cProfile, twice: a worker's first pass ("cold": every bed
reference's ORB features computed as it meets them) and the same results again in the same worker ("warm":
the references' features kept, as a worker meets the ward's beds again at the next roll-call). Prints CPU
ms per result by step (cumulative time of the step's functions; steps can nest, e.g. decoding inside ORB).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update  # noqa: E402

from models.settings import EngineSettings  # noqa: E402
from server.checks.tables import CheckResult  # noqa: E402
from server.db import WriteGate, db_scope, make_engine  # noqa: E402
from server.evidence.service import EvidenceChecker  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from server.simulation.county import CountySpec  # noqa: E402
from server.simulation.run import SimulationOptions, simulate  # noqa: E402

# step -> (file fragment, function name) whose cumulative time is the step's
STEPS = {
    "decode JPEG": [("models/faces/decode.py", "decode_image")],
    "ORB features (scene + references)": [("models/place/features.py", "extract_features")],
    "ORB match + RANSAC": [("models/place/match.py", "match_scene")],
    "place check, whole": [("server/evidence/place.py", "check")],
    "liveness key frames (landmarks)": [("server/evidence/liveness.py", "findings")],
    "crop re-encoding": [("server/evidence/service.py", "_reencode")],
    "hashing / same image": [("server/evidence/service.py", "_same_image")],
    "recent captures (replay, cross-hospital)": [("server/evidence/service.py", "_against_recent"),
                                                 ("server/evidence/recent.py", "refresh")],
    "naming (1:N)": [("server/evidence/service.py", "_whose_face")],
    "audit": [("server/audit/service.py", "record_many")],
    "database (all SQL)": [("sqlalchemy/engine/base.py", "_execute_context")],
    "claim (queue)": [("server/evidence/queue.py", "claim")],
}


def profile_pass(checker: EvidenceChecker, engine, n: int) -> tuple[float, dict[str, float], int]:  # type: ignore[no-untyped-def]
    profiler = cProfile.Profile(time.process_time)
    started = time.process_time()
    profiler.enable()
    with db_scope(engine) as db:
        checked = checker.run_once(db, WriteGate(engine), batch=n)
    profiler.disable()
    total = time.process_time() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    steps = {}
    for step, wanted in STEPS.items():
        cumulative = 0.0
        for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.items():
            if any(filename.endswith(f) and name == fn for f, fn in wanted):
                cumulative += ct
        steps[step] = cumulative
    return total / max(checked, 1) * 1000, {k: v / max(checked, 1) * 1000 for k, v in steps.items()}, checked


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inpatients", type=int, default=300)
    p.add_argument("--hospitals", type=int, default=3)
    a = p.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp(prefix='bedcheck-bench-evidence-')}/bench.db"
    spec = CountySpec(hospitals=a.hospitals, public_hospitals=a.hospitals, inpatients=a.inpatients, seed=11)
    summary = simulate(url, spec, SimulationOptions(deadline_s=120, offline_delay_s=1.0, server_workers=1,
                                                    evidence_in_server=False))
    print(f"county: {summary['tasks']} tasks, verdicts {summary['verdicts']}")
    engine = make_engine(url)
    settings = ServerSettings(database_url=url, environment="demo", keep_verified_crops=True)
    checker = EvidenceChecker(settings, EngineSettings.load())
    for name in ("cold", "warm"):
        per_result, steps, checked = profile_pass(checker, engine, 100_000)
        print(f"\n{name}: {checked} results, {per_result:.1f} ms CPU per result (under cProfile)")
        for step, ms in steps.items():
            print(f"  {step:45} {ms:7.2f} ms")
        with db_scope(engine) as db:  # judged again from the same stored evidence
            db.execute(update(CheckResult).values(evidence_checked_at=None))
    engine.dispose()


if __name__ == "__main__":
    main()
