"""One function per tile, run in this process or as tasks on a Dask ``distributed`` cluster:
the loop the tiled commands share (the regional scenario, tiled imputation, tiled scoring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def run_tasks(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    *,
    shared: Any = None,
    client: Any = None,
    progress: Callable[[int, int], None] | None = None,
    done: int = 0,
    total: int | None = None,
) -> list[Any]:
    """``fn(*job)`` for every job (``fn(shared, *job)`` when ``shared`` is given: sent to the
    workers once), on the ``distributed.Client`` ``client`` or, when None, one after another
    here. Returns the results in the order the jobs finished. ``progress(done, total)`` is
    called before the first and after each job; ``done`` counts jobs finished earlier (a
    restarted run) and ``total`` defaults to ``done`` plus the jobs."""
    total = done + len(jobs) if total is None else total
    head = () if shared is None else (shared,)
    if progress is not None:
        progress(done, total)
    results = []
    if client is None:
        finished = (fn(*head, *job) for job in jobs)
    else:
        from distributed import as_completed

        if shared is not None:
            head = (client.scatter(shared, broadcast=True),)
        futures = [client.submit(fn, *head, *job, pure=False) for job in jobs]
        finished = (future.result() for future in as_completed(futures))
    for result in finished:
        results.append(result)
        if progress is not None:
            progress(done + len(results), total)
    return results


__all__ = ["run_tasks"]
