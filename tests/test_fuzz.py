"""Fuzz: a few hundred randomly corrupted inputs through the CLI's entry points.

Contract files, checkpoint configurations and recipes are corrupted at random (fixed seeds, so
every run tries the same cases) and fed to ``stimpute data info``, ``impute``, ``benchmark`` and
``data build``. Each run must end in a clean result: exit code 0 with a valid output, or a
message on stderr with exit code 1 or 2, never an exception escaping ``main`` (a traceback), and
never a changed input file. The failures are collected, so one run lists every case that broke.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import traceback
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_readers_covariates import _utm_ramp_tif
from test_readers_smap import granule_name, write_granule

from stimpute_core.cli import main
from stimpute_core.data import open_dataset, validate
from stimpute_core.data.grid import TXSON_BOX, grid_coords
from stimpute_core.data.scenario import ScenarioConfig, make_scenario
from stimpute_core.models.st_transformer.model import STTransformerImputer

N_CONTRACT, N_CHECKPOINT, N_RECIPE = 120, 100, 80


def _digest(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (files or folders)."""
    out = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _run(argv: list[str], inputs: list[Path], capsys) -> tuple[int | None, str]:
    """Run the CLI; return (exit code, problem) where problem is '' for a clean end."""
    before = _digest(inputs)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refusing an option: a clean usage error
        code = stop.code if isinstance(stop.code, int) else 2
    except BaseException as err:
        capsys.readouterr()
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        return None, f"traceback: {type(err).__name__} at {where}: {str(err)[:200]}"
    captured = capsys.readouterr()
    err = captured.err + captured.out
    if _digest(inputs) != before:
        return code, "an input file changed"
    if code not in (0, 1, 2):
        return code, f"exit code {code}"
    if code != 0 and "error" not in err and "problem" not in err.lower():
        return code, f"exit {code} without a message: {err[-300:]!r}"
    return code, ""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small valid contract file (8 x 8 cells, 90 days) and a tiny checkpoint trained on it."""
    root = tmp_path_factory.mktemp("fuzz")
    full = make_scenario(ScenarioConfig(start="2019-01-01", end="2019-03-31", n_stations=4))
    ds = full.isel(x=slice(0, 8), y=slice(0, 8)).load()
    ds.to_netcdf(root / "good.nc", engine="h5netcdf")
    model = STTransformerImputer(profile="tiny", prior="regression", epochs=1, seed=0).fit(ds)
    model.save(root / "ckpt")
    return root, ds


# ---- contract files -------------------------------------------------------------------------

_POISON = [np.nan, np.inf, -np.inf, 1e30, -5.0, 0.0, 1e-30]


def _corrupt_dataset(ds: xr.Dataset, rng: np.random.Generator) -> tuple[xr.Dataset, str]:
    """One random structural or value corruption of ``ds``."""
    out = ds.copy(deep=True)
    names = list(out.data_vars)
    name = str(rng.choice(names))
    kind = int(rng.integers(14))
    if kind == 0:
        return out.drop_vars(name), f"drop {name}"
    if kind == 1:
        coord = str(rng.choice([c for c in ("lat", "lon", "time", "x", "y") if c in out.coords]))
        try:
            return out.drop_vars(coord), f"drop coordinate {coord}"
        except ValueError:
            return out, "unchanged"
    if kind == 2:
        var = out[name]
        if var.dtype.kind != "f":
            var = var.astype("float64")
        values = var.values.copy()
        flat = values.reshape(-1)
        k = max(1, int(rng.integers(1, max(2, flat.size // 10))))
        poison = float(rng.choice(_POISON))
        flat[rng.choice(flat.size, size=min(k, flat.size), replace=False)] = poison
        out[name] = var.copy(data=values)
        return out, f"{k} values of {name} set to {poison}"
    if kind == 3:
        out[name] = out[name] * float(rng.choice([100.0, -1.0, 1000.0, 0.01]))
        return out, f"{name} rescaled"
    if kind == 4:
        out[name].attrs["units"] = str(rng.choice(["%", "K", "banana", ""]))
        return out, f"{name} units changed"
    if kind == 5:
        var = out[name]
        if var.ndim >= 2:
            order = list(rng.permutation(var.dims))
            out[name] = var.transpose(*order)
            return out, f"{name} transposed to {order}"
        return out, "unchanged"
    if kind == 6:
        n = int(rng.choice([0, 1, 2]))
        dim = str(rng.choice(["time", "x", "y"]))
        return out.isel({dim: slice(0, n)}), f"{dim} cut to {n}"
    if kind == 7:
        times = out["time"].values.copy()
        if rng.random() < 0.5:
            times = times[::-1]
        else:
            times[1] = times[0]
        return out.assign_coords(time=times), "time reversed or duplicated"
    if kind == 8:
        out["soil_moisture_imputed"] = out["soil_moisture"].fillna(0.2)
        return out, "an imputed output given as input"
    if kind == 9:
        out["soil_moisture"] = out["soil_moisture"] * np.nan
        return out, "no observation at all"
    if kind == 10:
        x = out["x"].values.astype(float).copy()
        x[int(rng.integers(x.size))] += float(rng.choice([1.0, 500.0, -3000.0]))
        return out.assign_coords(x=x), "irregular x"
    if kind == 11:
        dim = str(rng.choice(list(out["soil_moisture"].dims)))
        return out.rename({dim: f"{dim}_renamed"}), f"dimension {dim} renamed"
    if kind == 12:
        var = out[name]
        out[name] = var.astype(str(rng.choice(["int8", "uint16", "float16"])))
        return out, f"{name} cast"
    lat = out["lat"].values.copy()
    lat.reshape(-1)[0] = float(rng.choice([np.nan, 95.0, -200.0]))
    out = out.assign_coords(lat=(out["lat"].dims, lat))
    return out, "lat out of range"


def _corrupt_bytes(good: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    kind = int(rng.integers(4))
    if kind == 0:
        cut = int(rng.integers(0, len(good)))
        return good[:cut], f"truncated at {cut}"
    if kind == 1:
        data = bytearray(good)
        for pos in rng.choice(len(data), size=20, replace=False):
            data[pos] = int(rng.integers(256))
        return bytes(data), "20 bytes flipped"
    if kind == 2:
        return b"", "empty"
    return b"root:x:0:0:root:/root:/bin/bash\n", "a text file"


def test_corrupted_contract_files_end_cleanly(tiny, tmp_path, capsys):
    root, ds = tiny
    good = (root / "good.nc").read_bytes()
    rng = np.random.default_rng(2026)
    failures = []
    for case in range(N_CONTRACT):
        path = tmp_path / f"case{case}.nc"
        if rng.random() < 0.25:
            data, what = _corrupt_bytes(good, rng)
            path.write_bytes(data)
        else:
            bad, what = _corrupt_dataset(ds, rng)
            try:
                bad.to_netcdf(path, engine="h5netcdf")
            except Exception:
                continue
        out = tmp_path / f"case{case}_out.nc"
        runs = [["data", "info", str(path)]]
        runs.append(["impute", "--data", str(path), "--model", str(root / "ckpt"),
                     "--device", "cpu", "--out", str(out)])  # fmt: skip
        if case % 4 == 0:
            runs.append(["benchmark", "--data", str(path), "--models", "mean", "--seeds", "1",
                         "--holdout", "point", "--test-start", "2019-03-01", "--quiet"])  # fmt: skip
        for argv in runs:
            code, problem = _run(argv, [path], capsys)
            if not problem and code == 0 and argv[0] == "impute":
                try:
                    imputed = open_dataset(out, check=False)
                    validate(imputed, allow_outputs=True)
                    assert "soil_moisture_imputed" in imputed
                except Exception as err:
                    problem = f"exit 0 but the output is not valid: {err}"
            if problem:
                failures.append(f"case {case} ({what}) · {' '.join(argv[:1])}: {problem}")
    assert not failures, "\n".join(failures)


# ---- checkpoint configurations --------------------------------------------------------------

_VALUES = [0, -1, 10**7, 10**9, math.nan, math.inf, "x", None, [], {}, True, 2.5, -0.5]


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _corrupt_config(config: dict, rng: np.random.Generator) -> tuple[dict, str]:
    out = copy.deepcopy(config)
    leaves = [p for p in _leaves(out) if p]
    path = leaves[int(rng.integers(len(leaves)))]
    kind = int(rng.integers(5))
    if kind == 0:
        node = out
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return out, f"deleted {'.'.join(path)}"
    if kind == 1:
        section = str(rng.choice([k for k, v in out.items() if isinstance(v, dict)]))
        out[section]["surprise"] = 1
        return out, f"unknown key in {section}"
    if kind == 2:
        lists = [p for p in leaves if isinstance(_get(out, p), list) and len(_get(out, p)) > 1]
        if lists:
            p = lists[int(rng.integers(len(lists)))]
            values = _get(out, p)
            values[0], values[-1] = values[-1], values[0]
            return out, f"swapped ends of {'.'.join(p)}"
    value = _VALUES[int(rng.integers(len(_VALUES)))]
    _set(out, path, value)
    return out, f"{'.'.join(path)} = {value!r}"


def _get(config, path):
    node = config
    for key in path:
        node = node[key]
    return node


def test_corrupted_checkpoints_end_cleanly(tiny, tmp_path, capsys):
    root, _ = tiny
    config = json.loads((root / "ckpt" / "config.json").read_text())
    rng = np.random.default_rng(7)
    failures = []
    for case in range(N_CHECKPOINT):
        ckpt = tmp_path / f"ckpt{case}"
        shutil.copytree(root / "ckpt", ckpt)
        if case % 10 == 9:
            weights = ckpt / "model.safetensors"
            data = weights.read_bytes()
            weights.write_bytes(data[: int(rng.integers(0, len(data)))])
            what = "weights truncated"
        else:
            bad, what = _corrupt_config(config, rng)
            (ckpt / "config.json").write_text(json.dumps(bad))
        argv = ["impute", "--data", str(root / "good.nc"), "--model", str(ckpt),
                "--device", "cpu", "--out", str(tmp_path / f"out{case}.nc")]  # fmt: skip
        code, problem = _run(argv, [ckpt, root / "good.nc"], capsys)
        if not problem and code == 0:
            out = open_dataset(tmp_path / f"out{case}.nc", check=False)
            validate(out, allow_outputs=True)
            imputed = out["soil_moisture_imputed"].values
            if not np.isfinite(imputed).any():
                problem = "exit 0 with an all-NaN imputation"
        if problem:
            failures.append(f"case {case} ({what}): {problem}")
        shutil.rmtree(ckpt)
    assert not failures, "\n".join(failures)


# ---- recipes --------------------------------------------------------------------------------

_RECIPE_VALUES = ['"granules/"', "5", '"deep"', "[1, 2]", '"../.."', '"/"', "true", '"txson"',
                  '"2020-02-01"', '"9999-01-01"', "-1", '"nowhere/"', "{}", '"txson.csv"']  # fmt: skip


@pytest.fixture(scope="module")
def recipe_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    grid = xr.Dataset(coords=grid_coords(TXSON_BOX))
    rows = np.arange(TXSON_BOX.row0, TXSON_BOX.row0 + 36)
    cols = np.arange(TXSON_BOX.col0, TXSON_BOX.col0 + 36)
    (root / "granules").mkdir()
    for k, day in enumerate(["2020-02-02", "2020-02-05"]):
        values = 0.1 + 0.01 * k + 0.0001 * np.arange(36 * 36).reshape(36, 36)
        write_granule(root / "granules" / granule_name(day), rows, cols, values)
    (root / "rasters").mkdir()
    _utm_ramp_tif(root / "rasters" / "dem.tif", grid)
    (root / "txson.csv").write_text(
        "station,time,lat,lon,depth,soil_moisture\n"
        "A1,2020-02-03T10:00:00,30.30,-98.80,0.05,0.20\n"
        "B2,2020-02-04T00:00:00,30.40,-98.70,0.05,0.15\n"
    )
    return root


_SECTIONS = {
    "": {"region": '"txson"', "start": '"2020-02-01"', "end": '"2020-02-10"'},
    "smap": {"granules": '"granules/"', "resolution": '"1km"', "quality": '"recommended"'},
    "static": {"elevation": '"rasters/dem.tif"'},
    "insitu": {"csv": '"txson.csv"'},
}


def _recipe_text(sections: dict[str, dict[str, str]]) -> str:
    lines = [f"{k} = {v}" for k, v in sections[""].items()]
    for name, body in sections.items():
        if name:
            lines.append(f"[{name}]")
            lines += [f"{k} = {v}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def test_corrupted_recipes_end_cleanly(recipe_folder, tmp_path, capsys):
    rng = np.random.default_rng(11)
    failures = []
    for case in range(N_RECIPE):
        sections = copy.deepcopy(_SECTIONS)
        what = []
        for _ in range(int(rng.integers(1, 3))):
            section = str(rng.choice(list(sections)))
            body = sections[section]
            kind = int(rng.integers(4))
            if kind == 0 and body:
                key = str(rng.choice(list(body)))
                del body[key]
                what.append(f"[{section}] {key} deleted")
            elif kind == 1:
                key = str(rng.choice(["netwrok", "qualty", "max_dept", "granuels", "scale"]))
                body[key] = str(rng.choice(_RECIPE_VALUES))
                what.append(f"[{section}] unknown {key}")
            elif body:
                key = str(rng.choice(list(body)))
                body[key] = str(rng.choice(_RECIPE_VALUES))
                what.append(f"[{section}] {key} = {body[key]}")
        text = _recipe_text(sections)
        if case % 8 == 7:
            text = text[: int(rng.integers(len(text)))]  # cut mid-way: often not valid TOML
            what.append("cut")
        path = recipe_folder / f"case{case}.toml"
        path.write_text(text)
        out = tmp_path / f"built{case}.nc"
        code, problem = _run(
            ["data", "build", str(path), "--out", str(out)], [recipe_folder], capsys
        )
        if not problem and code == 0:
            try:
                open_dataset(out)
            except Exception as err:
                problem = f"exit 0 but the output is not valid: {err}"
        if problem:
            failures.append(f"case {case} ({'; '.join(what)}): {problem}")
        path.unlink()
    assert not failures, "\n".join(failures)
