"""Shared fixtures: a ``panel serve app/`` subprocess on a free port; a guard against loading a
whole lazily opened cube."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def serve_app(env: dict, timeout: float = 180) -> Iterator[tuple[str, list[str]]]:
    """Start ``panel serve app/`` on a free port; yield the page URL and the live server log."""
    cmd = [sys.executable, "-m", "panel", "serve", "app/", "--port", "0", "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log: list[str] = []
    try:
        port = None
        deadline = time.monotonic() + timeout
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            log.append(line)
            match = re.search(r"Bokeh app running at: http://[\w.]+:(\d+)/", line)
            if match:
                port = int(match.group(1))
        assert port, "server did not start:\n" + "".join(log)
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True).start()
        yield f"http://127.0.0.1:{port}/app", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def app_server():
    """The :func:`serve_app` context manager."""
    return serve_app


@pytest.fixture
def no_whole_cube(monkeypatch):
    """Fail any conversion of a Dask-backed cube (time, y, x) to one numpy array: what
    ``.values`` on a lazily opened store does. Reductions computed chunk by chunk still work."""
    import dask.array

    real = dask.array.Array.__array__

    def guarded(self, *args, **kwargs):
        if self.ndim == 3:
            raise AssertionError(f"a whole {self.shape} cube was loaded")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(dask.array.Array, "__array__", guarded)


@pytest.fixture(scope="session")
def tile_store(tmp_path_factory):
    """A small scenario in a Zarr store of 12 x 12 tiles: 6 full tiles, 3 partial ones (the
    last row of tiles is 2 cells high), read by the tile-sample and tile-round tests."""
    from stimpute_core.data.grid import GridBox
    from stimpute_core.data.scenario import ScenarioConfig, make_scenario
    from stimpute_core.data.zarr_io import write_zarr

    box = GridBox(row0=3400, col0=7600, nrows=26, ncols=36)
    cfg = ScenarioConfig(seed=8, start="2019-01-01", end="2019-06-30", box=box, n_stations=3)
    path = tmp_path_factory.mktemp("tiles") / "in.zarr"
    write_zarr(make_scenario(cfg), path, tile=12)
    return path
