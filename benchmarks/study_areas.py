"""The two study areas every accuracy claim of the ST-Transformer is measured on.

- ``txson``: the built-in scenario (seed 0, the TxSON 36 km cell, 36 x 36 cells, 2016-2022).
- ``second``: a second synthetic area, fixed on 2026-12-02 *before* any tuning of the
  ST-Transformer's defaults and never used to choose them afterwards: another seed, another
  box (30 x 42 cells north-west of TxSON, so patches need padding), another period
  (2017-03-01 to 2021-10-31, test = its last two years). It only ever gets the final table.

    python benchmarks/study_areas.py            # writes benchmarks/out/{txson,second}.nc
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stimpute_core.data import write_netcdf
from stimpute_core.data.grid import TXSON_BOX, GridBox
from stimpute_core.data.scenario import ScenarioConfig, make_scenario

AREAS: dict[str, ScenarioConfig] = {
    "txson": ScenarioConfig(seed=0, box=TXSON_BOX),
    "second": ScenarioConfig(
        seed=11,
        start="2017-03-01",
        end="2021-10-31",
        box=GridBox(row0=3400, col0=7600, nrows=30, ncols=42),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, cfg in AREAS.items():
        path = args.out / f"{name}.nc"
        write_netcdf(make_scenario(cfg), path)
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
