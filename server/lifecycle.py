"""Every run stops what it started: SIGTERM ends a command the way Ctrl-C does.

Python turns SIGINT into KeyboardInterrupt, so a `finally` or a context manager on the way out stops the
server, the device processes, the evidence workers and the database cluster a command started. SIGTERM
(what a service manager, `kill` or CI sends) and SIGHUP (a closed terminal) kill the process outright by
default and skip all of that, leaving them running and holding ports and cores. `stop_on_signals` makes
them raise KeyboardInterrupt too. A second signal while the way out runs is noted, not raised: the clean-up
is bounded by its own timeouts (a server gets 10 s before SIGKILL) and an interrupted clean-up is what
leaves processes behind.

Children a command starts carry `die_with_parent`: should the command itself be killed with SIGKILL (no
clean-up at all), the kernel sends them SIGTERM, and they run their own way out.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
import threading
from types import FrameType

log = logging.getLogger("bedcheck.lifecycle")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1
_stopping = threading.Event()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _stopping.is_set():
        log.info("signal %s: already stopping", signal.Signals(signum).name)
        return
    _stopping.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, once (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _stopping.clear()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _on_signal)


def stopping() -> bool:
    """Whether a stop signal arrived (loops that own children check it between steps)."""
    return _stopping.is_set()


def ignore_interrupts() -> None:
    """For a child its parent stops: Ctrl-C in a terminal reaches the whole process group, and the child
    must wait to be told (and hand in what it measured) rather than die with a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def die_with_parent() -> None:
    """`preexec_fn` of a child process: SIGTERM when the parent dies, however it dies (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
