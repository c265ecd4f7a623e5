"""Crash tests' one move: start a CLI run and SIGKILL it part-way, as a power cut or the OOM killer would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence


def sigkill_part_way(command: Sequence[str], env: Mapping[str, str], rows: Callable[[], int], *, at_least: int,
                     poll_s: float, timeout_s: float = 300.0) -> None:
    """Runs `command` in its own process group and kills the whole group (the parent and its worker processes)
    once `rows()` has reached `at_least`; fails when the run ended first."""
    process = subprocess.Popen(list(command), env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while rows() < at_least and process.poll() is None and time.monotonic() < deadline:
        time.sleep(poll_s)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
