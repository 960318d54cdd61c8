"""Bad input to the data commands is refused with a clear message, and nothing written is lost:
atomic writes, granule folders, recipes, ``data info``, ``data demo --out`` and the cube's size."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_readers_smap import granule_name, write_granule

from stimpute_core.cli import main
from stimpute_core.data import INSITU, TARGET, write_netcdf
from stimpute_core.data.grid import TXSON_BOX, GridBox, grid_coords
from stimpute_core.data.io import STALE_AGE_S, atomic_write, atomic_write_dir
from stimpute_core.data.readers import ReaderError, path_kind
from stimpute_core.data.readers.build import build_from_recipe, load_recipe
from stimpute_core.data.readers.formats import granule_files, is_hdf5
from stimpute_core.data.readers.smap import read_smap_cube
from stimpute_core.data.sources import load_source

ROWS = np.arange(TXSON_BOX.row0, TXSON_BOX.row0 + 36)
COLS = np.arange(TXSON_BOX.col0, TXSON_BOX.col0 + 36)
HEAD = 'region = "txson"\nstart = "2020-02-01"\nend = "2020-02-10"\n'


def _granules(folder, suffix=".h5", days=("2020-02-02",)):
    folder.mkdir(parents=True, exist_ok=True)
    for day in days:
        name = granule_name(day).replace(".h5", suffix)
        write_granule(folder / name, ROWS, COLS, np.full((36, 36), 0.2))
    return folder


def _recipe(folder, body, head=HEAD, name="r.toml"):
    path = folder / name
    path.write_text(head + body)
    return path


def _contract(days=12, observed_days=9) -> xr.Dataset:
    """A 3 x 4-cell contract Dataset observed (one cell) on its first ``observed_days`` days."""
    box = GridBox(TXSON_BOX.row0, TXSON_BOX.col0, 3, 4)
    sm = np.full((days, 3, 4), np.nan, np.float32)
    sm[:observed_days, 0, 0] = 0.2
    time_ = pd.date_range("2020-01-01", periods=days)
    return xr.Dataset(
        {TARGET: (("time", "y", "x"), sm, {"units": "m3/m3"})},
        coords={"time": time_, **grid_coords(box)},
        attrs={"crs": "EPSG:6933"},
    )


# --------------------------------------------------------------------------- 1. atomic writes


def _temporaries(folder, name):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_killed_write_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "out.nc"
    target.write_bytes(b"old")

    def killed(tmp):
        tmp.write_bytes(b"half a file")
        os.kill(os.getpid(), signal.SIGKILL)

    pid = os.fork()
    if pid == 0:  # the child dies in the middle of its write
        try:
            atomic_write(target, killed)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)
    assert len(_temporaries(tmp_path, "out.nc")) == 1 and target.read_bytes() == b"old"

    atomic_write(target, lambda tmp: tmp.write_bytes(b"new"))
    assert _temporaries(tmp_path, "out.nc") == [] and target.read_bytes() == b"new"


def test_live_or_young_temporaries_are_kept_old_ones_removed(tmp_path):
    target = tmp_path / "out.bin"
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname())[:32]
    live = tmp_path / f".out.bin.{host}.{os.getppid()}.abcd1234.tmp"  # a writer still running
    young = tmp_path / ".out.bin.k3j2x9q1.tmp"  # an older version's name: judged by age
    old = tmp_path / ".out.bin.zz99yy88.tmp"
    other = tmp_path / ".other.bin.zz99yy88.tmp"  # another target's
    for p in (live, young, old, other):
        p.write_bytes(b"partial")
    stale = time.time() - STALE_AGE_S - 60
    os.utime(old, (stale, stale))
    os.utime(other, (stale, stale))
    atomic_write(target, lambda tmp: tmp.write_bytes(b"x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.bin", live.name, young.name, other.name]
    )


def test_rewrite_keeps_the_mode_and_a_new_file_follows_the_umask(tmp_path):
    target = tmp_path / "out.nc"
    old_mask = os.umask(0o027)
    try:
        atomic_write(target, lambda tmp: tmp.write_bytes(b"1"))
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        target.chmod(0o644)
        write_netcdf(xr.Dataset({"a": ("t", np.arange(3.0))}), target)
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        folder = tmp_path / "ckpt"
        atomic_write_dir(folder, lambda tmp: (tmp / "w").write_bytes(b"w"))
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750
        folder.chmod(0o700)
        atomic_write_dir(folder, lambda tmp: (tmp / "w").write_bytes(b"v"))
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and (folder / "w").read_bytes() == b"v"
    finally:
        os.umask(old_mask)


def test_write_onto_a_folder_or_folder_onto_a_file_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_bytes(b"keep")
    with pytest.raises(ValueError, match="is a folder"):
        atomic_write(tmp_path / "d", lambda tmp: tmp.write_bytes(b"x"))
    with pytest.raises(ValueError, match="is a file"):
        atomic_write_dir(tmp_path / "f", lambda tmp: None)
    assert (tmp_path / "f").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]


def test_a_folder_left_aside_by_a_killed_swap_is_put_back(tmp_path):
    aside = tmp_path / ".ckpt.old"
    aside.mkdir()
    (aside / "weights").write_bytes(b"saved")

    def fails(tmp):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_dir(tmp_path / "ckpt", fails)
    assert (tmp_path / "ckpt" / "weights").read_bytes() == b"saved"


# --------------------------------------------------------------------------- 2. granule folders


def test_nc4_subsets_and_hdf5_content_are_granules_everywhere(tmp_path):
    folder = _granules(tmp_path / "harmony", ".nc4", ("2020-02-02", "2020-02-05"))
    # HDF5 with a 512-byte user block, and a contract NetCDF that is HDF5 but no granule.
    ub = folder / granule_name("2020-02-07").replace(".h5", ".nc")
    with h5py.File(ub, "w", userblock_size=512) as f:
        f.create_group("Soil_Moisture_Retrieval_Data_1km")
    write_netcdf(_contract(), folder / "area.nc")
    (folder / "notes.xml").write_text("<sidecar/>")
    assert is_hdf5(ub) and not is_hdf5(folder / "notes.xml")
    assert [p.name for p in granule_files(folder)] == sorted(
        [granule_name(d).replace(".h5", ".nc4") for d in ("2020-02-02", "2020-02-05")] + [ub.name]
    )
    assert path_kind(folder) == "granules"
    cube, report = read_smap_cube(folder, start="2020-02-01", end="2020-02-10")
    assert len(report.read) == 2 and int(np.isfinite(cube[TARGET]).sum()) == 2 * 36 * 36
    built, _ = build_from_recipe(_recipe(tmp_path, '[smap]\ngranules = "harmony/"\n'))
    np.testing.assert_array_equal(built[TARGET].values, cube[TARGET].values)


def test_a_folder_without_granules_says_what_it_holds(tmp_path, capsys):
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    write_netcdf(_contract(), folder / "area.nc")
    argv = ["data", "smap", str(folder), "--start", "2020-02-01", "--end", "2020-02-03",
            "--out", str(tmp_path / "o.nc"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds 2 entries (area.nc, notes.txt) but no granule" in err and ".nc4" in err
    assert not (tmp_path / "o.nc").exists()


@pytest.mark.parametrize("spec", ['"missing/"', '["missing.h5"]', '"g/*.h5"'])
def test_a_missing_granules_folder_is_reported_as_missing(tmp_path, spec):
    (tmp_path / "g").mkdir()
    path = _recipe(tmp_path, f"[smap]\ngranules = {spec}\n")
    with pytest.raises(ReaderError, match=r"\[smap\] granules = .*(no such file|matches no file)"):
        build_from_recipe(path)


# --------------------------------------------------------------------------- 3. recipes


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[smap]\ngranules = "g/"\nqualty = "all"\n', r"\[smap\]: unknown key\(s\) qualty: allowed"),
        ('[smap]\ngranules = "g/"\n[insitu]\ncsv = "s.csv"\nnetwrok = "X"\n', "netwrok"),
        ('[smap]\ngranules = "g/"\n[insitu]\ncsv = "s.csv"\nmax_dept = 0.1\n', "max_dept"),
        ('[smap]\ngranules = "g/"\n[daymet]\nfile = "d.nc"\n', r"\[daymet\]: unknown.*file"),
        ("[smap]\ngranules = 5\n", r"\[smap\] granules = 5: expected a path"),
        ('[smap]\ngranules = "g/"\n[insitu]\ncsv = "s.csv"\nmax_depth = "deep"\n',
         r'max_depth = "deep": expected a number'),
        ('[smap]\ngranules = "g/"\nresolution = "2km"\n', r'resolution = "2km": expected one of'),
        ('smap = "g/"\n', r'smap = "g/": expected a table'),
        ('[smap]\ngranules = "g/"\n[static]\nelevaton = "dem.tif"\n', "did you mean elevation"),
        ('[smap]\ngranules = "g/"\n[static]\nsoil_moisture = "x.tif"\n', "not a static"),
    ],
)  # fmt: skip
def test_recipe_keys_and_types_are_checked(tmp_path, body, message):
    with pytest.raises(ReaderError, match=message) as info:
        load_recipe(_recipe(tmp_path, body))
    assert "r.toml" in str(info.value)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        ('region = [1, 2]\nstart = "2020-01-01"\nend = "2020-01-02"\n',
         r"region = \[1, 2\]: expected a named region"),
        ('start = 5\nend = "2020-01-02"\n', "start = 5: expected an ISO date"),
        ('start = "2020-02-01"\nend = "2020-01-02"\n', "before start"),
    ],
)  # fmt: skip
def test_recipe_region_and_dates_are_checked_from_the_cli(tmp_path, capsys, head, message):
    path = _recipe(tmp_path, '[smap]\ngranules = "g/"\n', head=head)
    assert main(["data", "build", str(path), "--out", str(tmp_path / "o.nc")]) == 2
    assert message.replace("\\", "") in capsys.readouterr().err.replace("\\", "")


def test_a_binary_or_foreign_file_as_recipe_is_named_not_echoed(tmp_path, capsys):
    secret = "root:x:0:0:root:/root:/bin/bash\n"
    (tmp_path / "passwd").write_text(secret)
    (tmp_path / "blob.toml").write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe")
    with pytest.raises(ReaderError, match=r"blob\.toml: is not a text file"):
        load_recipe(tmp_path / "blob.toml")
    for name in ("passwd", "blob.toml"):
        assert main(["data", "build", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
        assert "root:x" not in capsys.readouterr().err
    _granules(tmp_path / "g")
    path = _recipe(tmp_path, '[smap]\ngranules = "g/"\n[insitu]\ncsv = "passwd"\n')
    assert main(["data", "build", str(path), "--out", str(tmp_path / "o.nc")]) == 2
    err = capsys.readouterr().err
    assert "passwd" in err and "root:x" not in err


def test_cli_recipes_may_name_files_beside_their_folder(tmp_path):
    _granules(tmp_path / "g")
    (tmp_path / "recipes").mkdir()
    ds, report = build_from_recipe(_recipe(tmp_path / "recipes", '[smap]\ngranules = "../g/"\n'))
    assert len(report.read) == 1 and ds.sizes["time"] == 10


@pytest.mark.parametrize("where", ["dotdot", "absolute", "link", "linked_granule"])
def test_data_folder_recipes_and_granules_stay_inside_it(tmp_path, where):
    outside = _granules(tmp_path / "outside")
    root = tmp_path / "data"
    root.mkdir()
    spec = {"dotdot": "../outside/", "absolute": str(outside), "link": "link/"}.get(where)
    (root / "link").symlink_to(outside, target_is_directory=True)
    inner = _granules(root / "g", days=("2020-02-03",))
    (inner / granule_name("2020-02-05")).symlink_to(next(outside.iterdir()))
    current = _contract(days=10)
    current = current.assign_coords(time=pd.date_range("2020-02-01", periods=10))
    if where == "linked_granule":
        with pytest.raises(ValueError, match="links outside the data folder"):
            load_source(current, root, "g")
        return
    _recipe(root, f'[smap]\ngranules = "{spec}"\n')
    with pytest.raises(ReaderError, match="outside the data folder"):
        load_source(current, root, "r.toml")


# --------------------------------------------------------------------------- 4. static scales


def test_static_tables_carry_scale_and_units_to_the_raster_reader(tmp_path, monkeypatch):
    from stimpute_core.data.readers import rasters

    _granules(tmp_path / "g")
    for name in ("clay.tif", "dem.tif"):
        (tmp_path / name).write_bytes(b"raster")
    seen = {}

    def fake(files, grid, **kw):
        seen.update(files=files, **kw)
        return xr.Dataset()

    monkeypatch.setattr(rasters, "read_static_covariates", fake)
    body = (
        '[smap]\ngranules = "g/"\n[static]\nelevation = "dem.tif"\n'
        'clay = { path = "clay.tif", scale = 0.1, units = "%" }\n'
    )
    recipe = load_recipe(_recipe(tmp_path, body))
    assert recipe["static"]["clay"] == {"path": "clay.tif", "scale": 0.1, "units": "%"}
    build_from_recipe(tmp_path / "r.toml")
    assert sorted(p.name for p in seen["files"].values()) == ["clay.tif", "dem.tif"]
    assert seen["scales"] == {"clay": {"scale": 0.1, "units": "%"}}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('clay = { path = "c.tif", scale = "x" }', r'clay.scale = "x": expected a positive'),
        ('clay = { path = "c.tif", scale = 0 }', "expected a positive number"),
        ('clay = { pth = "c.tif" }', r"\[static.clay\]: unknown key\(s\) pth"),
        ('clay = { scale = 0.1 }', "clay = .*expected"),
        ('land_cover = { path = "lc.tif", scale = 2 }', "class codes"),
    ],
)  # fmt: skip
def test_bad_static_tables_are_refused(tmp_path, entry, message):
    with pytest.raises(ReaderError, match=message):
        load_recipe(_recipe(tmp_path, f'[smap]\ngranules = "g/"\n[static]\n{entry}\n'))


# --------------------------------------------------------------------------- 5. data info


def test_info_counts_days_along_time_whatever_the_storage_order(tmp_path, capsys):
    path = tmp_path / "xyt.nc"
    ds = _contract()
    ds[TARGET] = ds[TARGET].transpose("x", "y", "time")
    ds.to_netcdf(path, engine="h5netcdf")
    assert main(["data", "info", str(path), "--json"]) == 1  # the order breaks the contract
    info = json.loads(capsys.readouterr().out.split("\ncontract")[0])
    assert info["days_with_observations"] == 9 and info["observed_values"] == 9


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.drop_vars(["lat", "lon"]), "coordinate 'lat' is missing"),
        (lambda ds: ds.drop_vars(TARGET), "'soil_moisture' is missing"),
        (lambda ds: ds.isel(time=slice(0, 0)), "holds no day"),
    ],
)
def test_info_on_an_undescribable_file_lists_its_problems(tmp_path, capsys, change, message):
    path = tmp_path / "bad.nc"
    change(_contract()).to_netcdf(path, engine="h5netcdf")
    assert main(["data", "info", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("contract ") and message in out and "bad.nc" in out


def test_info_on_land_cover_with_non_finite_codes_lists_the_problem(tmp_path, capsys):
    """Found by the fuzz test: infinite land-cover codes made the summary an OverflowError."""
    ds = _contract()
    lc = np.full((3, 4), 10.0)
    lc[0, :2] = np.inf
    ds["land_cover"] = (("y", "x"), lc, {"flag_values": [10], "flag_meanings": "grasslands"})
    path = tmp_path / "lc.nc"
    ds.to_netcdf(path, engine="h5netcdf")
    assert main(["data", "info", str(path), "--json"]) == 1
    out = capsys.readouterr().out
    assert "expected integer IGBP codes" in out
    info = json.loads(out.split("\ncontract")[0])
    assert info["land_cover"]["not a code (NaN or infinite)"] == 2


def test_info_explains_a_station_file_and_a_recipe_takes_it(tmp_path, capsys):
    (tmp_path / "s.csv").write_text(
        "station,time,lat,lon,depth,soil_moisture\nA1,2020-02-03T10:00:00,30.30,-98.80,0.05,0.2\n"
    )
    stations = tmp_path / "stations.nc"
    assert main(["data", "insitu", str(tmp_path / "s.csv"), "--out", str(stations)]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(stations)]) == 2
    err = capsys.readouterr().err
    assert "a station file" in err and "1 station(s)" in err and "stimpute data build" in err
    _granules(tmp_path / "g")
    ds, _ = build_from_recipe(
        _recipe(tmp_path, '[smap]\ngranules = "g/"\n[insitu]\nstations = "stations.nc"\n')
    )
    assert ds[INSITU].sel(station="A1", time="2020-02-03").item() == pytest.approx(0.2)


# --------------------------------------------------------------------------- 6. demo --out


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_demo_never_replaces_what_is_at_out(tmp_path, capsys, kind):
    out = tmp_path / "out"
    if kind == "folder":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    else:
        out.write_text("mine")
    argv = ["data", "demo", "--out", str(out), "--start", "2020-01-01", "--end", "2020-01-05"]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "keep.txt" if kind == "folder" else out).read_text() == "mine"


def test_smap_out_onto_a_folder_is_refused_before_reading(tmp_path, capsys):
    _granules(tmp_path / "g")
    (tmp_path / "o").mkdir()
    argv = ["data", "smap", str(tmp_path / "g"), "--start", "2020-02-01", "--end", "2020-02-03",
            "--out", str(tmp_path / "o"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "is a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- 7. cube size


def test_a_cube_too_large_for_memory_is_refused_with_its_size(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("STIMPUTE_MAX_MEMORY_GB", raising=False)
    _granules(tmp_path / "g")
    argv = ["data", "smap", str(tmp_path / "g"), "--region=-125,25,-66,50", "--start",
            "2016-01-01", "--end", "2022-12-31", "--out", str(tmp_path / "o.nc"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "2557 days x 2520 x 5688 cells would need about 219.9 GB" in err
    assert "smaller --region" in err and "STIMPUTE_MAX_MEMORY_GB" in err


def test_the_memory_limit_follows_the_environment(tmp_path, capsys, monkeypatch):
    _granules(tmp_path / "g")
    path = _recipe(tmp_path, '[smap]\ngranules = "g/"\n', head=HEAD.replace("02-10", "12-31"))
    monkeypatch.setenv("STIMPUTE_MAX_MEMORY_GB", "0.001")
    with pytest.raises(
        ValueError,
        match=r"335 days x 36 x 36 cells would need about 2.6 MB .* 1.0 MB \(set by STIMPUTE_MAX",
    ):
        build_from_recipe(path)
    argv = ["data", "smap", str(tmp_path / "g"), "--start", "2020-01-01", "--end", "2020-12-31",
            "--out", str(tmp_path / "o.nc"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    assert "more than the limit of 1.0 MB" in capsys.readouterr().err
    monkeypatch.setenv("STIMPUTE_MAX_MEMORY_GB", "lots")
    assert main(argv) == 2
    assert "STIMPUTE_MAX_MEMORY_GB='lots': expected a positive number" in capsys.readouterr().err
