"""``panel serve app/`` starts and serves the page on the built-in scenario."""

import os
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import serve_app

ROOT = Path(__file__).resolve().parents[1]


def _serve_and_get(env: dict, until=lambda: True) -> str:
    """Start ``panel serve app/`` on a free port, GET the page, wait for ``until()``, stop."""
    with serve_app(env) as (url, log), urllib.request.urlopen(url, timeout=120) as resp:
        assert resp.status == 200
        page = resp.read().decode()
        deadline = time.monotonic() + 120
        while not until() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert until(), "".join(log)
        return page


@pytest.mark.slow
def test_panel_serve_app_loads_the_page(tmp_path):
    # On a fresh server the page comes at once; the scenario is generated and cached behind it.
    cached = lambda: any(tmp_path.glob("txson_*.nc"))  # noqa: E731
    page = _serve_and_get(dict(os.environ, STIMPUTE_CACHE_DIR=str(tmp_path)), until=cached)
    assert "stimpute" in page


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


@pytest.mark.slow
def test_a_failing_warm_up_is_reported_and_the_server_serves(tmp_path):
    bad = tmp_path / "bad.nc"
    bad.write_text("not a NetCDF file")
    env = dict(os.environ, STIMPUTE_DATA=str(bad), STIMPUTE_CACHE_DIR=str(tmp_path / "cache"))
    with serve_app(env) as (url, log):
        deadline = time.monotonic() + 120
        while not any("stimpute: ready" in line for line in log) and time.monotonic() < deadline:
            time.sleep(0.2)
        ready = next(line for line in log if "stimpute: ready" in line)
        assert "without warm-up, which failed" in ready
        with urllib.request.urlopen(url, timeout=120) as resp:
            assert resp.status == 200 and "stimpute" in resp.read().decode()
