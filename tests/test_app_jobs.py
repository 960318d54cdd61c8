"""Background jobs (``workbench.jobs.Job``) and the server-wide cache (``workbench.shared``).

Threads meet on events, never on fixed sleeps: each wait has a generous timeout that only a
broken implementation reaches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import pytest

from workbench import shared
from workbench.jobs import Job

WAIT = 30  # seconds; a correct run needs milliseconds


def finished(job: Job) -> Job:
    job.join(WAIT)
    assert job.finished, job.snapshot()
    return job


# --------------------------------------------------------------------------- Job


def test_a_pending_job_has_an_empty_snapshot():
    job = Job("noop", lambda j: None)
    snap = job.snapshot()
    assert job.status == "pending" and not job.finished
    assert snap["name"] == "noop" and snap["fraction"] == 0.0 and snap["elapsed_s"] == 0.0
    assert snap["message"] == "" and snap["error"] is None and snap["history"] == []


def test_a_finished_job_keeps_its_result():
    job = finished(Job("sum", lambda j: 1 + 2).start())
    snap = job.snapshot()
    assert job.status == "done" and job.result == 3
    assert snap["fraction"] == 1.0 and snap["error"] is None and snap["elapsed_s"] >= 0.0
    assert not job.handled  # the session's poll takes the result, not the job


def test_a_failing_job_reports_its_error_and_trace():
    def work(job: Job):
        raise ValueError("bad input")

    job = finished(Job("broken", work).start())
    snap = job.snapshot()
    assert job.status == "failed" and job.result is None
    assert snap["error"] == "bad input" and "ValueError" in snap["trace"]


def test_progress_reported_by_the_worker_shows_in_snapshots():
    reported, release = threading.Event(), threading.Event()

    def work(job: Job):
        job.report(0.25, "a quarter", eta_s=30.0, history=[{"epoch": 1, "val_mae": 0.05}])
        reported.set()
        release.wait(WAIT)
        job.report(7.0)  # clipped to [0, 1]; the message stays
        return "ok"

    job = Job("train", work).start()
    assert reported.wait(WAIT)
    snap = job.snapshot()
    assert snap["status"] == "running" and snap["fraction"] == 0.25
    assert snap["message"] == "a quarter" and snap["eta_s"] == 30.0
    assert snap["history"] == [{"epoch": 1, "val_mae": 0.05}]
    snap["history"].append("changed")  # a copy: the job's own state is untouched
    assert len(job.snapshot()["history"]) == 1
    release.set()
    finished(job)
    assert job.snapshot()["message"] == "a quarter" and job.snapshot()["fraction"] == 1.0


def test_negative_progress_is_clipped_to_zero():
    job = finished(Job("p", lambda j: j.report(-1.0)).start())
    assert job.status == "done"  # the end sets the fraction to one
    job = Job("p", lambda j: None)
    job.report(-1.0, "before start")
    assert job.snapshot()["fraction"] == 0.0 and job.snapshot()["message"] == "before start"


def test_cancel_asks_the_work_to_stop_and_keeps_what_it_returned():
    started = threading.Event()

    def work(job: Job):
        started.set()
        job.cancel_event.wait(WAIT)
        return "partial"

    job = Job("train", work, keep_on_cancel=True).start()
    assert started.wait(WAIT)
    job.cancel()
    assert job.snapshot()["message"] == "cancelling…"
    finished(job)
    assert job.status == "cancelled" and job.result == "partial" and job.keep_on_cancel


def test_an_error_after_cancel_is_a_cancellation_not_a_failure():
    started = threading.Event()

    def work(job: Job):
        started.set()
        job.cancel_event.wait(WAIT)
        raise RuntimeError("interrupted")

    job = Job("load", work).start()
    assert started.wait(WAIT)
    job.cancel()
    finished(job)
    snap = job.snapshot()
    assert job.status == "cancelled" and snap["error"] is None
    assert snap["message"] == "cancelled: interrupted"


def test_on_done_is_kept_for_the_session_and_not_called_by_the_job():
    calls: list = []
    job = finished(Job("x", lambda j: 5, on_done=calls.append).start())
    assert calls == [] and job.on_done is not None
    job.on_done(job.result)
    assert calls == [5]


def test_join_of_a_job_never_started_returns():
    Job("never", lambda j: None).join(0.01)


# --------------------------------------------------------------------------- shared cache


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(shared, "_SHARED", OrderedDict())
    monkeypatch.setattr(shared, "_MAKING", {})


@pytest.fixture
def waiting(monkeypatch) -> threading.Event:
    """Set when a caller starts waiting for a value another caller is computing."""
    event = threading.Event()
    result = shared._Pending.result

    def spied(self):
        event.set()
        return result(self)

    monkeypatch.setattr(shared._Pending, "result", spied)
    return event


def _thread(target) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        try:
            out["value"] = target()
        except BaseException as err:  # handed to the test
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_two_sessions_asking_for_the_same_value_compute_it_once(fresh_cache, waiting):
    calls, entered, release = [], threading.Event(), threading.Event()

    def make():
        calls.append(1)
        entered.set()
        release.wait(WAIT)
        return object()

    first, a = _thread(lambda: shared._shared(("run", "x"), make))
    assert entered.wait(WAIT)
    second, b = _thread(lambda: shared._shared(("run", "x"), make))
    assert waiting.wait(WAIT)  # the second caller waits for the first one's result
    assert second.is_alive() and len(calls) == 1
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert len(calls) == 1
    assert a["value"] is b["value"]
    assert shared._shared(("run", "x"), make) is a["value"]  # cached now
    assert len(calls) == 1 and not shared._MAKING


def test_other_keys_are_not_held_up_by_a_value_being_computed(fresh_cache):
    entered, release = threading.Event(), threading.Event()

    def slow():
        entered.set()
        release.wait(WAIT)
        return "slow"

    first, a = _thread(lambda: shared._shared(("slow",), slow))
    assert entered.wait(WAIT)
    try:
        assert shared._shared(("quick",), lambda: "quick") == "quick"  # while slow() runs
        assert first.is_alive()
    finally:
        release.set()
    first.join(WAIT)
    assert a["value"] == "slow"


def test_a_failure_reaches_the_waiters_and_is_not_kept(fresh_cache, waiting):
    entered, release = threading.Event(), threading.Event()

    def broken():
        entered.set()
        release.wait(WAIT)
        raise ValueError("no covariate")

    first, a = _thread(lambda: shared._shared(("run", "y"), broken))
    assert entered.wait(WAIT)
    second, b = _thread(lambda: shared._shared(("run", "y"), lambda: "computed"))
    assert waiting.wait(WAIT)
    release.set()
    first.join(WAIT)
    second.join(WAIT)
    assert isinstance(a["error"], ValueError) and isinstance(b["error"], ValueError)
    assert ("run", "y") not in shared._SHARED and not shared._MAKING
    assert shared._shared(("run", "y"), lambda: "again") == "again"  # tried again


def test_the_cache_keeps_the_most_recently_used_values(fresh_cache, monkeypatch):
    monkeypatch.setattr(shared, "_SHARED_MAX", 2)
    shared._shared(("a",), lambda: 1)
    shared._shared(("b",), lambda: 2)
    shared._shared(("a",), lambda: -1)  # used again: kept
    shared._shared(("c",), lambda: 3)
    assert list(shared._SHARED) == [("a",), ("c",)]
