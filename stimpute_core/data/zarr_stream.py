"""Contract stores written a batch of days at a time: the output of readers that stream granules.

A reader learns its cube day by day (one pass over the granules, in day order), but a contract
store holds a tile's *whole* time axis in every chunk (:mod:`.zarr_io`): writing one day
straight into it would read, decode, change and rewrite every chunk of the store, day after
day. So a :class:`DayStream` writes in two steps:

1. A temporary store beside the output, chunked by (``batch`` days, tile, tile), takes each
   finished batch of days in whole-chunk writes (no chunk is read back while streaming).
   Memory: the reader's one batch of days of the grid.
2. :meth:`DayStream.commit` rechunks it to the contract's space tiles with Dask
   (:func:`~.zarr_io.write_zarr` on the lazily opened temporary store): each task joins one
   tile's batches into its whole series, so memory is one tile's whole series per Dask thread,
   and tiles are written in parallel. The output appears atomically (:func:`~.atomic.atomic_write_dir`).

The temporary store is removed however the stream ends; an error before the commit leaves
nothing at the output (an existing store there stays as it was). It is named like the atomic
writes' temporaries (``.<name>.<host>.<pid>.<random>.tmp``), so one left by a killed process is
removed by the next write of that output (:func:`~.atomic.remove_stale_temporaries`). Disk: the
temporary store and the output coexist until the commit ends (about twice the compressed cube).
Values pass unchanged (float32 to the last bit): a streamed store equals what
:func:`~.zarr_io.write_zarr` writes from the same cube held in memory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import dask.array
import numpy as np
import xarray as xr
import zarr

from .atomic import _tmp_name, remove_stale_temporaries
from .zarr_io import DEFAULT_TILE, SUFFIX, is_store, write_zarr

#: Most days in one batch of a streamed load (the time chunk of the temporary store).
BATCH_DAYS = 32
#: Most bytes the arrays of one batch may take; a large grid gets fewer days per batch.
BATCH_BYTES = 256 * 10**6

__all__ = ["BATCH_BYTES", "BATCH_DAYS", "DayStream", "batch_days", "check_zarr_out"]


def batch_days(ndays: int, ncells: int, bytes_per_cell_day: int, *, most: int | None = None) -> int:
    """Days per batch of a streamed load: at most ``most`` (default :data:`BATCH_DAYS`), fewer
    when a batch's arrays (``bytes_per_cell_day`` per cell and day) would exceed
    :data:`BATCH_BYTES`; at least 1, at most ``ndays``."""
    most = BATCH_DAYS if most is None else most
    if isinstance(most, bool) or not isinstance(most, int) or most < 1:
        raise ValueError(f"batch of {most!r} days: expected a whole number of days, 1 or more")
    fit = BATCH_BYTES // max(1, ncells * bytes_per_cell_day)
    return int(max(1, min(most, fit, ndays)))


def check_zarr_out(path: str | os.PathLike, label: str = "--out") -> Path:
    """``path`` as a :class:`Path` when it may receive a streamed store: it ends ``.zarr`` and is
    absent or a Zarr store; ``ValueError`` naming ``label`` otherwise."""
    path = Path(path)
    if path.suffix.lower() != SUFFIX:
        raise ValueError(
            f"{label} {path}: a streamed load writes a Zarr store (a name ending .zarr)"
        )
    if (path.exists() or path.is_symlink()) and not is_store(path):
        raise ValueError(f"{label} {path} exists and is not a Zarr store: refusing to replace it")
    return path


class DayStream:
    """A contract store at ``out`` written a batch of days at a time (module docstring).

    ``grid`` holds the coordinates (``time``, ``y``, ``x``, ``lat``, ``lon``) of every variable
    in ``names``, each float32 ``(time, y, x)``. Use as a context manager: :meth:`write` each
    batch, then :meth:`commit` the finished Dataset (built from :meth:`dataset`); leaving the
    block without a commit, or by an error, writes nothing.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        grid: xr.Dataset,
        names: Sequence[str],
        *,
        batch: int,
        tile: int = DEFAULT_TILE,
    ):
        self.out = check_zarr_out(out)
        missing = [c for c in ("time", "y", "x") if c not in grid.coords]
        if missing:
            raise ValueError(f"grid lacks the coordinate(s) {', '.join(missing)}")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch={batch!r}: expected a whole number of days, 1 or more")
        self.grid, self.names, self.batch, self.tile = grid, tuple(names), batch, tile
        self.shape = (grid.sizes["time"], grid.sizes["y"], grid.sizes["x"])
        self.tmp: Path | None = None
        self._arrays: dict[str, zarr.Array] = {}

    def __enter__(self) -> DayStream:
        remove_stale_temporaries(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = _tmp_name(self.out)
        nt, ny, nx = self.shape
        chunks = (min(self.batch, nt), min(self.tile, ny), min(self.tile, nx))
        empty = dask.array.full(self.shape, np.nan, dtype=np.float32, chunks=chunks)
        template = self.grid.assign({n: (("time", "y", "x"), empty) for n in self.names})
        try:
            template.to_zarr(self.tmp, mode="w-", compute=False, zarr_format=2, consolidated=False)
            group = zarr.open_group(str(self.tmp), mode="r+", zarr_format=2)
            self._arrays = {n: group[n] for n in self.names}
        except BaseException:
            self._remove()
            raise
        return self

    def write(self, name: str, t0: int, block: np.ndarray) -> None:
        """Days ``t0 .. t0 + len(block) - 1`` of variable ``name``; whole chunks when ``t0`` is a
        multiple of the batch (a write elsewhere rewrites the chunks it touches)."""
        if name not in self._arrays:
            raise ValueError(f"{name!r} is not a variable of the stream ({', '.join(self.names)})")
        block = np.asarray(block)
        nt, ny, nx = self.shape
        if block.ndim != 3 or block.shape[1:] != (ny, nx) or not 0 <= t0 <= nt - len(block):
            raise ValueError(
                f"{name}: a block of shape {block.shape} at day {t0} does not fit the stream's "
                f"{nt} days x {ny} x {nx} cells"
            )
        self._arrays[name][t0 : t0 + len(block)] = block.astype(np.float32, copy=False)
        os.utime(self.tmp)  # a live stream's temporary never looks stale, however long the load

    def read(self, name: str, t0: int, t1: int) -> np.ndarray:
        """Days ``t0 .. t1 - 1`` of variable ``name`` as written so far (NaN where not)."""
        return np.asarray(self._arrays[name][t0:t1])

    def dataset(self) -> xr.Dataset:
        """The temporary store opened lazily (Dask arrays in its batch chunks), without the
        store's encoding: the output is encoded like a Dataset built in memory."""
        if self.tmp is None:
            raise RuntimeError("the stream is not open: use it in a with block")
        ds = xr.open_zarr(self.tmp, consolidated=False, chunks={})
        for var in ds.variables.values():
            var.encoding = {}
        return ds

    def commit(self, ds: xr.Dataset) -> Path:
        """Write ``ds`` (built from :meth:`dataset`) as the contract store at ``out``, rechunked
        to space tiles by Dask; atomic. Returns ``out``."""
        os.utime(self.tmp)
        return write_zarr(ds, self.out, tile=self.tile)

    def _remove(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._arrays = {}
        self._remove()
