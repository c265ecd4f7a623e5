"""Evidence worker processes: `bedcheck evidence work --processes N` (one per core by default).

Each worker takes results from the evidence queue in the database (`queue.py`), judges them with the
evidence checker (whatever checks it runs: "a stored upload in, findings out") and writes the findings. A
machine adds workers by running this command against the same database; nothing else is shared. The
supervisor starts the workers, starts again any that dies (its claims run out and are taken again), and
stops them all on Ctrl-C, SIGTERM or SIGHUP (server/lifecycle.py): a worker stopped in the middle of a batch
gives its claims back.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from typing import Any

from server import lifecycle

log = logging.getLogger("bedcheck.evidence.workers")


def default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def work(*, batch: int, idle_s: float, once: bool = False) -> int:
    """One worker, in this process: claims, checks and writes until stopped (or, `once`, until the queue is
    empty). Returns how many results it checked."""
    from models.settings import EngineSettings
    from server.db import WriteGate, db_scope, make_engine
    from server.evidence import queue
    from server.evidence.service import EvidenceChecker
    from server.settings import ServerSettings

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    gate = WriteGate(engine)
    checker = EvidenceChecker(settings, EngineSettings.load())
    total = 0
    try:
        while True:
            with db_scope(engine) as db:
                checked = checker.run_once(db, gate, batch=batch)
            total += checked
            if not checked:
                if once:
                    return total
                time.sleep(idle_s)
    except KeyboardInterrupt:
        if checker.in_hand:  # the batch it was judging goes back to the queue now, not after its lease
            with gate, db_scope(engine) as db:
                queue.release(db, worker=checker.worker, ids=checker.in_hand)
        raise
    finally:
        engine.dispose()


def _child(batch: int, idle_s: float) -> None:
    lifecycle.stop_on_signals()
    logging.basicConfig(level=logging.WARNING)
    try:
        work(batch=batch, idle_s=idle_s)
    except KeyboardInterrupt:
        pass


def run_pool(*, processes: int, batch: int, idle_s: float, on_tick: Any = None) -> None:
    """Starts `processes` workers and keeps them running until a stop signal; then stops them all."""
    lifecycle.stop_on_signals()
    ctx = mp.get_context("spawn")  # a fresh interpreter each: no database connection or lock inherited
    children: list[Any] = []

    def start(i: int) -> Any:
        child = ctx.Process(target=_child, args=(batch, idle_s), name=f"evidence-worker-{i}")
        child.start()
        return child

    try:
        children = [start(i) for i in range(processes)]
        while True:
            time.sleep(1.0)
            for i, child in enumerate(children):
                if not child.is_alive():
                    log.warning("evidence worker %s exited with %s; starting another", child.pid, child.exitcode)
                    children[i] = start(i)
            if on_tick is not None:
                on_tick()
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: its way out gives its claims back
        deadline = time.monotonic() + 15
        for child in children:
            child.join(timeout=max(0.1, deadline - time.monotonic()))
            if child.is_alive():
                child.kill()
                child.join()
