"""Run time of each tutorial notebook, top to bottom in a fresh kernel.

Run: ``python benchmarks/notebook_times.py [--full] [--json benchmarks/results/notebooks.json]``.

By default the notebooks run in fast mode (``STIMPUTE_FAST=1``, as in CI), where each should take
under 3 minutes on 2 CPU cores; ``--full`` runs them as a user would without it. The built-in
scenario is cached beforehand in the given (or default) cache folder, so generating it is not
timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TARGET_S = 180.0


def cpu() -> str:
    """The CPU model of this machine."""
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def run(path: Path) -> float:
    """Execute one notebook in a fresh kernel with ``notebooks/`` as its folder; seconds taken."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="without STIMPUTE_FAST")
    parser.add_argument("--cache-dir", type=Path, default=None, help="scenario cache folder")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    if args.cache_dir:
        os.environ["STIMPUTE_CACHE_DIR"] = str(args.cache_dir.resolve())
    if args.full:
        os.environ.pop("STIMPUTE_FAST", None)
    else:
        os.environ["STIMPUTE_FAST"] = "1"
    from stimpute_core.data.scenario import load_scenario

    load_scenario()  # cached before timing
    rows = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        seconds = run(path)
        rows.append({"notebook": path.stem, "seconds": round(seconds, 1)})
        print(f"  {path.stem}: {seconds:.1f} s", flush=True)
    mode = "full mode" if args.full else "fast mode (STIMPUTE_FAST=1)"
    lines = [f"| notebook | time, {mode} | target |", "|---|---|---|"]
    for row in rows:
        ok = "✓" if row["seconds"] < TARGET_S else "✗"
        target = f"< {TARGET_S:.0f} s {ok}" if not args.full else "–"
        lines.append(f"| `{row['notebook']}` | {row['seconds']:.0f} s | {target} |")
    table = "\n".join(lines)
    print(f"\n{cpu()}, {os.cpu_count()} cores\n\n{table}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "benchmark": "notebook_times",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "mode": mode,
            "cpu": cpu(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "results": rows,
            "table": table,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
