"""The simulated devices of a run, as threads of this process or spread over several processes.

A province has thousands of ward devices; as threads of one interpreter they contend for one GIL with
each other and with the progress loop, and the simulator, not the server, becomes what is measured.
Real devices are separate machines: separate processes are the closer stand-in.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from server import lifecycle
from server.simulation.county import County
from server.simulation.devices import SimulatedDevice
from server.simulation.real_faces import RealFaces


@dataclass(frozen=True)
class DeviceSpec:
    ward_id: int
    code: str
    token: str | None
    answer_delay_s: float


@dataclass
class FleetReport:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def merge(self, other: FleetReport) -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.errors.extend(other.errors)


def _joined(devices: list[SimulatedDevice]) -> FleetReport:
    """Waits for devices told to stop, then collects what they measured."""
    report = FleetReport()
    for device in devices:
        device.join(timeout=10)
        report.latencies_ms.extend(device.latencies_ms)
        report.errors.extend(device.errors)
    return report


def _devices(base_url: str, county: County, specs: list[DeviceSpec], *, seed: int, batch_size: int,
             real: RealFaces | None, stop: Any) -> list[SimulatedDevice]:
    return [SimulatedDevice(base_url, s.code, county, seed=seed * 1000 + s.ward_id, stop=stop, batch_size=batch_size,
                            real=real, token=s.token, answer_delay_s=s.answer_delay_s) for s in specs]


def _run_share(base_url: str, county: County, specs: list[DeviceSpec], seed: int, batch_size: int,
               stop: Any, reports: Any) -> None:
    """A child process: its share of the devices as threads, until `stop`; then its report to the parent."""
    lifecycle.ignore_interrupts()
    devices = _devices(base_url, county, specs, seed=seed, batch_size=batch_size, real=None, stop=stop)
    for device in devices:
        device.start()
    stop.wait()
    reports.put(_joined(devices))


class DeviceFleet:
    """Starts every device; `stop()` ends them and returns what they measured.

    With `processes` > 1 the devices are dealt round-robin to forked child processes (the county is
    inherited, not pickled); `processes=None` gives one per `DEVICES_PER_PROCESS`. Beds with real photos
    run the face engine in this process only, so a run with real faces keeps its devices here.
    """

    # Measured: 368 device threads in 2 processes kept up with the server; 1,840 in one did not.
    DEVICES_PER_PROCESS = 500

    def __init__(self, base_url: str, county: County, specs: list[DeviceSpec], *, seed: int, batch_size: int,
                 real: RealFaces | None = None, processes: int | None = None) -> None:
        if processes is None:
            processes = -(-len(specs) // self.DEVICES_PER_PROCESS)
        self.processes = 1 if real is not None else max(1, min(processes, len(specs) or 1))
        if self.processes == 1:
            self._stop: Any = threading.Event()
            self._threads = _devices(base_url, county, specs, seed=seed, batch_size=batch_size, real=real,
                                     stop=self._stop)
            for device in self._threads:
                device.start()
            return
        ctx = mp.get_context("fork")
        self._stop = ctx.Event()
        self._reports: Any = ctx.Queue()
        self._children = [ctx.Process(target=_run_share, name=f"devices-{i}", daemon=True,
                                      args=(base_url, county, specs[i::self.processes], seed, batch_size,
                                            self._stop, self._reports))
                          for i in range(self.processes)]
        for child in self._children:
            child.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout_s: float = 30.0) -> FleetReport:
        self._stop.set()
        if self.processes == 1:
            return _joined(self._threads)
        report = FleetReport()
        received, deadline = 0, time.monotonic() + timeout_s
        while received < len(self._children) and time.monotonic() < deadline:
            try:
                report.merge(self._reports.get(timeout=0.2))
                received += 1
            except queue.Empty:
                # A child that died (SIGTERM to the group, a crash) sends nothing: stop waiting for it.
                if not any(child.is_alive() for child in self._children) and self._reports.empty():
                    break
        report.errors += ["device process lost"] * (len(self._children) - received)
        for child in self._children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()
        return report
