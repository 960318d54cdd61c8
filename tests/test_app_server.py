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


@pytest.mark.slow
def test_panel_serve_app_loads_the_page(tmp_path):
    env = dict(os.environ, STIMPUTE_CACHE_DIR=str(tmp_path))
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
        assert "stimpute" in page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
