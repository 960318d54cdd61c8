"""Background jobs: long work (loading data, training, imputing) on a thread of its own.

A job belongs to one browser session. The worker thread only writes to the job (under a lock);
the session's page polls :meth:`Job.snapshot` from its own event loop and updates widgets there,
so no Bokeh model is ever touched from the worker. Torch and NumPy release the GIL while they
compute, so the server keeps answering other sessions while a model trains.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any


class Job:
    """One piece of background work with progress, messages, cancel, a result or an error.

    ``work(job)`` runs on the thread; it reports with :meth:`report`, checks ``job.cancel_event``
    (or passes it on, e.g. to ``STTransformerImputer.fit(cancel=...)``) and returns the result.
    """

    def __init__(
        self,
        name: str,
        work: Callable[[Job], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        keep_on_cancel: bool = False,
    ):
        self.name = name
        #: Called by the page's poll (on its own loop) with the result of a finished job, or of
        #: a cancelled one when ``keep_on_cancel`` (a training keeps its best weights so far).
        self.on_done = on_done
        self.keep_on_cancel = keep_on_cancel
        self.handled = False
        self.cancel_event = threading.Event()
        self._work = work
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {
            "name": name,
            "status": "pending",
            "fraction": 0.0,
            "message": "",
            "eta_s": None,
            "history": [],
            "error": None,
        }
        self.result: Any = None
        self.started = 0.0
        self._thread = threading.Thread(target=self._run, name=f"stimpute-{name}", daemon=True)

    def start(self) -> Job:
        self.started = time.perf_counter()
        self._update(status="running")
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            result = self._work(self)
        except Exception as err:  # the page shows it; the server goes on
            if self.cancel_event.is_set():
                self._update(status="cancelled", message=f"cancelled: {err}")
            else:
                self._update(status="failed", error=f"{err}", trace=traceback.format_exc())
            return
        self.result = result
        status = "cancelled" if self.cancel_event.is_set() else "done"
        self._update(status=status, fraction=1.0 if status == "done" else None)

    def _update(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                if value is not None or key in ("eta_s",):
                    self._state[key] = value

    def report(
        self,
        fraction: float | None = None,
        message: str | None = None,
        *,
        eta_s: float | None = None,
        history: list[dict] | None = None,
    ) -> None:
        """Called from the worker: progress in [0, 1], a message, an ETA, the training history."""
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        self._update(fraction=fraction, message=message, eta_s=eta_s, history=history)

    def cancel(self) -> None:
        """Ask the work to stop at its next check."""
        self.cancel_event.set()
        self._update(message="cancelling…")

    def snapshot(self) -> dict[str, Any]:
        """A copy of the job's state, safe to read from any thread."""
        with self._lock:
            state = dict(self._state)
            state["history"] = list(state["history"])
        state["elapsed_s"] = time.perf_counter() - self.started if self.started else 0.0
        return state

    @property
    def status(self) -> str:
        with self._lock:
            return self._state["status"]

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread (tests and shutdown)."""
        if self._thread.is_alive():
            self._thread.join(timeout)
