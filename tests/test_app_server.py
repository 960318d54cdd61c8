"""``panel serve app/`` starts and serves the page on the built-in scenario."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _serve_and_get(env: dict) -> str:
    """Start ``panel serve app/`` on a free port, GET the page, stop the server."""
    panel = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        "app/",
        "--port",
        "0",
        "--address",
        "127.0.0.1",
    ]
    proc = subprocess.Popen(
        panel, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        port, log = None, []
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            log.append(line)
            match = re.search(r"Bokeh app running at: http://[\w.]+:(\d+)/", line)
            if match:
                port = int(match.group(1))
        assert port, "server did not start:\n" + "".join(log)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=120) as resp:
            page = resp.read().decode()
        assert resp.status == 200
        return page
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_panel_serve_app_loads_the_page(tmp_path):
    page = _serve_and_get(dict(os.environ, STIMPUTE_CACHE_DIR=str(tmp_path)))
    assert "stimpute" in page
    assert any(tmp_path.glob("txson_*.nc"))  # the built-in scenario was generated and cached


@pytest.mark.slow
def test_app_opens_a_contract_file_named_by_the_server(tmp_path):
    from stimpute_core.data.io import write_netcdf
    from stimpute_core.data.scenario import ScenarioConfig, make_scenario

    path = tmp_path / "area.nc"
    write_netcdf(make_scenario(ScenarioConfig(start="2020-01-01", end="2020-03-31")), path)
    env = dict(os.environ, STIMPUTE_DATA=str(path), STIMPUTE_CACHE_DIR=str(tmp_path / "cache"))
    page = _serve_and_get(env)
    assert "stimpute" in page
    assert not (tmp_path / "cache").exists()  # the built-in scenario was not generated
