"""Work spread over worker processes with a bounded number in flight, for the enrollment and re-encoding runs."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_bounded(items: Sequence[Item], call: Callable[[Item], tuple[Callable[..., Result], tuple[Any, ...]]], *,
                workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...],
                ) -> Iterator[tuple[Item, Result]]:
    """Runs `fn(*args)` for each item, `(fn, args) = call(item)`, on `workers` processes; yields
    (item, result) as they finish. At most four per worker are in flight, so `call` prepares each item (a photo
    read, a chip loaded) only shortly before a worker takes it."""
    if not items:
        return
    # spawn: the parent holds DB connections and threads that a forked child must not inherit.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context, initializer=initializer,
                             initargs=initargs) as pool:
        pending: dict[Future[Result], Item] = {}
        queue = iter(items)
        limit = max(1, workers) * 4
        while True:
            for item in queue:
                fn, args = call(item)
                pending[pool.submit(fn, *args)] = item
                if len(pending) >= limit:
                    break
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()
