"""SIGTERM to `bedcheck demo` or `scripts/simulate.py` in the middle of a run: every process it started (the
uvicorn server and its workers, the device processes, the PostgreSQL cluster) is gone and the port is free."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures.live_server import free_port
from tests.fixtures.postgres import _binaries


def _wait_for(what: str, ready: Callable[[], bool], process: subprocess.Popen[bytes], timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise AssertionError(f"exited with {process.returncode} before {what}: {stderr[-1500:]}")
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.3)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _command(p: psutil.Process) -> str:
    """Its command line; empty for one that is gone or a zombie meanwhile (a pool's child exiting)."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_free(port: int) -> bool:
    """Nothing listens on it and a server can bind it again (with SO_REUSEADDR as every server sets: the
    closed connections' TIME_WAIT stays on, by TCP's design)."""
    if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in psutil.net_connections("tcp")):
        return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(processes: list[psutil.Process]) -> list[str]:
    left = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return left


def _mentioning(text: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(text in part for part in p.info["cmdline"] or []):
            found.append(p)
    return found


def _serving_on(port: int) -> list[psutil.Process]:
    """Any uvicorn on `port`, a child or not (one orphaned by its parent is what this looks for)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if any("uvicorn" in part for part in cmdline) and "--port" in cmdline \
                and cmdline[cmdline.index("--port") + 1:][:1] == [str(port)]:
            found.append(p)
    return found


def _terminate_and_check(process: subprocess.Popen[bytes], started: list[psutil.Process], port: int,
                         others: Callable[[], list[psutil.Process]]) -> str:
    """SIGTERM to the command alone (as a service manager sends it); returns its stderr."""
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:  # leave nothing behind even when the test fails
        os.killpg(process.pid, signal.SIGKILL)
        for p in started:
            p.kill()
        raise
    deadline = time.monotonic() + 15  # a SIGKILLed straggler needs a moment to be reaped
    while (_alive(started) or _alive(others())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(started) == [], "processes it started are still running"
    assert _alive(others()) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing left in its process group either
    assert _port_free(port)
    stderr = err.decode(errors="replace")
    assert "Traceback" not in stderr, stderr[-2000:]
    return stderr


@pytest.mark.slow
def test_sigterm_to_the_demo_stops_its_server_and_devices(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BEDCHECK_DATA_DIR": str(tmp_path), "BEDCHECK_FACES_DIR": str(tmp_path / "no-faces"),
           "BEDCHECK_DATABASE_URL": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "demo", "--hospitals", "2", "--inpatients", "80", "--deadline-s", "120",
         "--offline-s", "600", "--port", str(port), "--no-review"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    # Mid-run: the server answers, and the offline ward keeps the spot check open.
    _wait_for("server", lambda: _answers(port), process)
    started = _descendants(process.pid)
    assert any("uvicorn" in _command(p) for p in started)
    assert process.poll() is None
    _terminate_and_check(process, started, port, lambda: _serving_on(port))


@pytest.mark.slow
def test_sigterm_to_simulate_stops_its_server_devices_and_cluster() -> None:
    postgres = _binaries() is not None
    # The cluster's and the SQLite file's directory, ours alone; outside pytest's tmp_path, which the postgres
    # user cannot enter.
    tmp_path = Path(tempfile.mkdtemp(prefix="bedcheck-stop-"))
    tmp_path.chmod(0o755)
    try:
        _simulate_and_terminate(tmp_path, postgres)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _simulate_and_terminate(tmp_path: Path, postgres: bool) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("BEDCHECK_TEST_POSTGRES_URL", None)
    process = subprocess.Popen(
        [sys.executable, "scripts/simulate.py", "--hospitals", "2", "--inpatients", "120", "--beds-per-ward", "10",
         "--device-processes", "2", "--pre-paired", "--offline-delay", "600", "--deadline", "300",
         *(["--database-url", "postgresql"] if postgres else [])],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def server_and_devices() -> bool:
        commands = [_command(p) for p in _descendants(process.pid)]
        return (any("uvicorn" in c for c in commands)
                and sum("simulate.py" in c for c in commands) >= 2)  # the forked device processes

    _wait_for("server and device processes", server_and_devices, process)
    started = _descendants(process.pid)
    uvicorn = next(p for p in started if "uvicorn" in _command(p))
    cmdline = uvicorn.cmdline()
    port = int(cmdline[cmdline.index("--port") + 1])
    _wait_for("server", lambda: _answers(port), process)
    cluster = _mentioning(str(tmp_path)) if postgres else []
    if postgres:
        assert cluster, "the throwaway PostgreSQL cluster was not found running"
    stderr = _terminate_and_check(process, started + cluster, port,
                                  lambda: _serving_on(port) + _mentioning(str(tmp_path)))
    assert "stopped" in stderr
    assert not any(tmp_path.glob("bedcheck-pg-*")), "the cluster's directory is left behind"
