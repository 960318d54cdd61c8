"""Measure how long the default built-in scenario takes to generate and how much memory it needs.

Run: ``.venv/bin/python benchmarks/scenario_generation.py``. Prints a Markdown table row for the
README. Each measurement runs in a fresh process so peak memory is that of generation alone.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time


def _measure(queue, write: bool) -> None:
    from stimpute_core.data.io import write_netcdf
    from stimpute_core.data.scenario import ScenarioConfig, make_scenario

    t0 = time.perf_counter()
    ds = make_scenario(ScenarioConfig())
    gen_s = time.perf_counter() - t0
    write_s = None
    size_mb = None
    if write:
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            path = write_netcdf(ds, os.path.join(tmp, "scenario.nc"))
            write_s = time.perf_counter() - t1
            size_mb = path.stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"generate_s": gen_s, "write_s": write_s, "file_mb": size_mb, "peak_rss_mb": peak_mb})


def main() -> None:
    ctx = mp.get_context("spawn")
    runs = []
    for _ in range(3):
        q = ctx.Queue()
        p = ctx.Process(target=_measure, args=(q, True))
        p.start()
        runs.append(q.get())
        p.join()
    best = min(runs, key=lambda r: r["generate_s"])
    print(
        json.dumps(
            {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": runs}, indent=2
        )
    )
    print(
        f"| default scenario (36 x 36 x 2557) | {best['generate_s']:.1f} s | "
        f"{best['write_s']:.1f} s | {best['file_mb']:.0f} MB | "
        f"{max(r['peak_rss_mb'] for r in runs):.0f} MB |"
    )


if __name__ == "__main__":
    main()
