"""Several counties in one spot check, with the simulated devices spread over processes (province mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.simulation.county import CountySpec
from server.simulation.run import SimulationOptions, simulate


@pytest.mark.slow
def test_two_counties_with_devices_in_two_processes_reach_a_verdict_for_every_admission(tmp_path: Path) -> None:
    specs = [CountySpec(name=f"County {i}", hospitals=2, public_hospitals=1, inpatients=150, beds_per_ward=25,
                        bed_hanging_rate=0.06, impersonation_rate=0.04, spoof_rate=0.02, offline_wards=1, seed=11 + i)
             for i in range(2)]
    summary = simulate(f"sqlite:///{tmp_path / 'province.db'}", specs,
                       SimulationOptions(deadline_s=90, offline_delay_s=1.0, device_processes=2, pre_paired=True,
                                         batch_size=10))
    assert summary["device_processes"] == 2
    assert summary["inpatients"] == summary["tasks"] == 300
    assert summary["hospitals"] == 4 and summary["offline_wards"] == 2
    assert "pending" not in summary["verdicts"] and "overdue" not in summary["verdicts"]
    assert sum(summary["verdicts"].values()) == 300
    for kind in ("bed_hanging", "impersonation", "spoof"):
        assert summary["seeded"][kind] > 0, kind
        assert summary["recall"][kind] == 1.0 and summary["precision"][kind] == 1.0, kind
    # Every device process reported back, and every answered bed's upload was counted once.
    assert "device process lost" not in summary["device_errors"]
    assert summary["uploads"] == 300 - summary["verdicts"].get("exempt", 0)
