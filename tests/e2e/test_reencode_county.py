"""A seeded county enrolled with dlib, moved to sface by `bedcheck enroll reencode` without new photos: the spot
checks before and after judge every seeded truth right (precision and recall 1.0), and after the change the
real-photo beds are decided on sface encodings, against the re-encoded gallery."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models.faces.engines import DLIB, SFACE, EngineName
from models.verdicts import Verdict
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.cli import app
from server.db import make_engine
from server.persons.tables import FaceEmbedding
from server.simulation.county import CountySpec, Truth
from server.simulation.run import SimulationOptions, seed_counties, spot_check

SCORED = ("bed_hanging", "impersonation", "spoof", "place", "ineligible", "on_leave")
# What each real-photo bed must be decided, on either engine.
EXPECTED = {Truth.PRESENT: Verdict.VERIFIED, Truth.IMPERSONATION: Verdict.IMPERSONATED, Truth.SPOOF: Verdict.SPOOF}


def _real_results(db_url: str, campaign_id: int, admissions: set[int]) -> dict[int, tuple[Verdict, str, str]]:
    """Per real-photo admission: the verdict, the engine of the server's encoding and of the device's."""
    engine = make_engine(db_url)
    with Session(engine) as db:
        rows = db.exec(select(CheckTask.admission_id, CheckTask.verdict, CheckResult.server_engine_version,
                              CheckResult.engine_version)
                       .join(CheckResult, col(CheckResult.task_id) == col(CheckTask.id))
                       .where(CheckTask.campaign_id == campaign_id, col(CheckTask.admission_id).in_(admissions))).all()
    engine.dispose()
    return {int(a): (Verdict(v), server, device) for a, v, server, device in rows}


def _assert_every_truth_found(summary: dict, seeded_real: dict[int, Truth]) -> None:  # type: ignore[type-arg]
    assert summary["inpatients"] == summary["tasks"]
    assert "pending" not in summary["verdicts"] and "overdue" not in summary["verdicts"], summary["verdicts"]
    for kind in SCORED:
        assert summary["seeded"][kind] > 0, kind
        assert summary["precision"][kind] == 1.0 and summary["recall"][kind] == 1.0, (kind, summary)
    assert summary["real_face_beds"] == len(seeded_real)
    assert "device process lost" not in summary["device_errors"]


@pytest.mark.faces
@pytest.mark.slow
def test_reencode_moves_a_seeded_county_from_dlib_to_sface_with_every_verdict_still_right(
        faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_url = f"sqlite:///{tmp_path / 'county.db'}"
    # The server, the reencode command and this process share one data directory (face indexes, keys).
    monkeypatch.setenv("BEDCHECK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BEDCHECK_DATABASE_URL", db_url)
    spec = CountySpec(name="Reencode County", hospitals=2, public_hospitals=1, inpatients=60, beds_per_ward=15,
                      bed_hanging_rate=0.08, impersonation_rate=0.08, spoof_rate=0.05, exempt_rate=0.03,
                      on_leave_rate=0.03, ineligible_rate=0.03, carried_home_rate=0.02, offline_wards=0, seed=23)
    options = SimulationOptions(deadline_s=90, faces_dir=faces_dir, pre_paired=True, device_processes=1,
                                server_workers=1, batch_size=10, engine=EngineName.DLIB)
    seeded = seed_counties(db_url, spec, options)
    assert seeded.real is not None
    real = {a: bed.truth for a, bed in seeded.real.beds.items()}
    assert {Truth.PRESENT, Truth.IMPERSONATION, Truth.SPOOF} <= set(real.values())

    # Before: the real-photo patients enrolled with dlib (chips kept), checked and decided on dlib.
    before = spot_check(db_url, seeded, options)
    _assert_every_truth_found(before, real)
    decided = _real_results(db_url, before["campaign_id"], set(real))
    assert {a: v for a, (v, _, _) in decided.items()} == {a: EXPECTED[t] for a, t in real.items()}
    assert {(server, device) for _, server, device in decided.values()} == {(DLIB.tag, DLIB.tag)}

    # The change of engine: the real command, re-embedding every kept chip with sface.
    result = CliRunner().invoke(app, ["enroll", "reencode", "--engine", "sface", "--json", "--quiet",
                                      "--workers", "2", "--rejects", str(tmp_path / "rejects.csv")])
    assert result.exit_code == 0, result.output
    reencoded = json.loads(result.stdout[result.stdout.index("{"):])
    engine = make_engine(db_url)
    with Session(engine) as db:
        chips = db.exec(select(FaceEmbedding.id).where(col(FaceEmbedding.chip_jpeg).is_not(None),
                                                       FaceEmbedding.engine_version == DLIB.tag)).all()
    engine.dispose()
    assert reencoded["rejected"] == 0 and reencoded["reencoded"] == len(chips) >= 2 * len(real)
    # The synthetic rest of the county has no photos: listed as needing new ones, by person (each has two
    # enrolled faces without a chip since the admission desk takes two photos), not dropped.
    assert len(reencoded["needs_new_photos"]) == spec.inpatients - len(real)
    assert reencoded["without_chip"] == sum(int(p["faces"]) for p in reencoded["needs_new_photos"])

    # After: server and devices on sface; the same beds, a new spot check, the same truth found.
    after = spot_check(db_url, seeded, replace(options, engine=EngineName.SFACE))
    _assert_every_truth_found(after, real)
    decided = _real_results(db_url, after["campaign_id"], set(real))
    assert {a: v for a, (v, _, _) in decided.items()} == {a: EXPECTED[t] for a, t in real.items()}
    assert {(server, device) for _, server, device in decided.values()} == {(SFACE.tag, SFACE.tag)}
    assert before["campaign_id"] != after["campaign_id"]
