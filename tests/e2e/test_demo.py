"""`bedcheck demo --no-serve --json` at a small scale: one JSON object, every admission judged, frauds found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_json_reports_every_verdict_and_finds_the_seeded_frauds(tmp_path: Path) -> None:
    env = {**os.environ, "BEDCHECK_DATA_DIR": str(tmp_path)}
    env.pop("BEDCHECK_DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "server.cli", "demo", "--no-serve", "--json", "--hospitals", "4",
         "--inpatients", "400", "--seed", "11"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    summary = json.loads(completed.stdout)  # exactly one JSON object on stdout
    assert summary["inpatients"] == 400
    assert sum(summary["verdicts"].values()) == 400 and "pending" not in summary["verdicts"]
    assert summary["seeded"]["bed_hanging"] > 0 and summary["seeded"]["impersonation"] > 0
    for kind in ("bed_hanging", "impersonation"):
        assert summary["recall"][kind] == 1.0
        assert summary["precision"][kind] >= 0.99
    # Two enrolled photos per person (a template): honest patients are rarely sent to review for their face.
    review = summary["genuine_sent_to_review_for_face"]
    assert review["present"] > 300 and review["rate"] <= 0.005
    assert summary["seeded"]["ineligible"] > 0 and summary["seeded"]["on_leave"] > 0
    for kind in ("ineligible", "on_leave"):
        assert summary["precision"][kind] == 1.0 and summary["recall"][kind] == 1.0
    # every seeded fraud confirmed by the simulated review, refused by the agreement exactly as the truth says
    assert summary["confirmed"] == summary["confirmed_seeded"]
    funds = summary["funds"]
    assert funds["refused_fen"] == funds["expected_refused_fen"] == funds["report_refused_fen"] > 0
    assert summary["summary_line"] == (f"{summary['confirmed']['bed_hanging']} bed-hanging cases confirmed, "
                                       f"{funds['refused']} refused")
    # 实地: the seeded "tablet carried home" checks are flagged place_mismatch, and no other verified check is.
    assert summary["seeded"]["place"] >= 1
    assert summary["precision"]["place"] == 1.0 and summary["recall"]["place"] == 1.0
    assert summary["verified_flagged_for_place"] == 0
    assert summary["seconds_to_complete"] > 0
    assert (tmp_path / "demo.db").exists()
