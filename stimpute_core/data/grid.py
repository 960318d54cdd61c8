"""EASE-Grid 2.0 (EPSG:6933) geometry: the grid the data contract lives on.

Constants are NSIDC's ``ease2_grid_info`` values. Cell ``(row, col)`` of a grid with cell size
``c`` has its centre at ``x = X_UL + (col + 0.5) c`` and ``y = Y_UL - (row + 0.5) c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pyproj import Transformer

EASE2_CRS = "EPSG:6933"
X_UL = -17367530.445161
Y_UL = 7314540.830639

#: Cell sizes in metres of the nested global EASE-Grid 2.0 grids.
CELL_SIZE = {
    "M36": 36032.220840584,
    "M09": 9008.055210146,
    "M03": 3002.6850700487,
    "M01": 1000.89502334956,
}
#: Grid shape (rows, cols) of each global grid.
GRID_SHAPE = {"M36": (406, 964), "M09": (1624, 3856), "M03": (4872, 11568), "M01": (14616, 34704)}


@lru_cache(maxsize=4)
def _transformer(inverse: bool) -> Transformer:
    if inverse:
        return Transformer.from_crs(EASE2_CRS, "EPSG:4326", always_xy=True)
    return Transformer.from_crs("EPSG:4326", EASE2_CRS, always_xy=True)


def lonlat_to_xy(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project longitude/latitude in degrees to EASE-Grid 2.0 x/y in metres."""
    return _transformer(False).transform(np.asarray(lon, float), np.asarray(lat, float))


def xy_to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`lonlat_to_xy`."""
    return _transformer(True).transform(np.asarray(x, float), np.asarray(y, float))


def cell_centres(grid: str, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre x (from ``cols``) and y (from ``rows``) in metres of cells of ``grid`` ("M01", ...)."""
    c = CELL_SIZE[grid]
    return X_UL + (np.asarray(cols) + 0.5) * c, Y_UL - (np.asarray(rows) + 0.5) * c


def xy_to_rowcol(grid: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell of ``grid`` containing each point."""
    c = CELL_SIZE[grid]
    col = np.floor((np.asarray(x, float) - X_UL) / c).astype(int)
    row = np.floor((Y_UL - np.asarray(y, float)) / c).astype(int)
    return row, col


@dataclass(frozen=True)
class GridBox:
    """A rectangle of 1 km (M01) cells: rows ``row0 .. row0+nrows-1``, columns likewise."""

    row0: int
    col0: int
    nrows: int
    ncols: int

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre ``x`` (west to east) and ``y`` (north to south) in metres."""
        x, _ = cell_centres("M01", 0, np.arange(self.col0, self.col0 + self.ncols))
        _, y = cell_centres("M01", np.arange(self.row0, self.row0 + self.nrows), 0)
        return np.asarray(x), np.asarray(y)


#: The TxSON 36 km cell of EASE-Grid 2.0 (M36 row 100, column 217) as 36 x 36 cells of 1 km.
TXSON_BOX = GridBox(row0=100 * 36, col0=217 * 36, nrows=36, ncols=36)


def box_for_region(west: float, south: float, east: float, north: float) -> GridBox:
    """The rectangle of 1 km EASE-Grid 2.0 cells whose centres lie in a lon/lat box.

    EASE-Grid 2.0 is cylindrical, so longitude maps to columns and latitude to rows alone.
    """
    (x0, x1), (y0, y1) = lonlat_to_xy(np.array([west, east]), np.array([south, north]))
    c = CELL_SIZE["M01"]
    col0 = int(np.ceil((x0 - X_UL) / c - 0.5))
    col1 = int(np.floor((x1 - X_UL) / c - 0.5))
    row0 = int(np.ceil((Y_UL - y1) / c - 0.5))
    row1 = int(np.floor((Y_UL - y0) / c - 0.5))
    if col1 < col0 or row1 < row0:
        raise ValueError(
            f"region W={west}, S={south}, E={east}, N={north} holds no 1 km EASE-Grid 2.0 cell centre"
        )
    return GridBox(row0=row0, col0=col0, nrows=row1 - row0 + 1, ncols=col1 - col0 + 1)


def grid_coords(box: GridBox) -> dict[str, tuple]:
    """Contract coordinates ``x``, ``y``, ``lat(y, x)`` and ``lon(y, x)`` of ``box``."""
    x, y = box.coords()
    xx, yy = np.meshgrid(x, y)
    lon, lat = xy_to_lonlat(xx, yy)
    return {
        "y": ("y", y, {"units": "m", "long_name": "EASE-Grid 2.0 y of cell centre"}),
        "x": ("x", x, {"units": "m", "long_name": "EASE-Grid 2.0 x of cell centre"}),
        "lat": (("y", "x"), lat, {"units": "degrees_north"}),
        "lon": (("y", "x"), lon, {"units": "degrees_east"}),
    }
