"""Terrain derived from elevation, shared by the synthetic scenario and the raster readers."""

from __future__ import annotations

from typing import Any

import numpy as np


def slope_aspect(elevation: np.ndarray, dx: Any, dy: Any) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in degrees of a 2-D elevation grid (rows along y, columns along x).

    ``dx``/``dy`` are the signed steps of ground distance in metres between neighbouring columns
    and rows, positive eastward and northward: ``x[1] - x[0]`` and ``y[1] - y[0]``, so ``dy < 0``
    for the contract's north-to-south rows. Scalars or arrays broadcastable to ``elevation``.
    Gradients are numpy's central differences (one-sided at the edges), as in the synthetic
    scenario. Slope is ``arctan(|grad z|)``; aspect is the compass direction the slope faces
    (downslope), clockwise from north in 0..360: a plane rising to the east faces west (270).
    Flat cells (zero gradient) get aspect 0 by convention.
    """
    z = np.asarray(elevation, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"elevation must be 2-D (y, x), got shape {z.shape}")
    dz_row = np.gradient(z, axis=0) if z.shape[0] > 1 else np.zeros_like(z)
    dz_col = np.gradient(z, axis=1) if z.shape[1] > 1 else np.zeros_like(z)
    dzdx = dz_col / np.asarray(dx, dtype=float)  # eastward
    dzdn = dz_row / np.asarray(dy, dtype=float)  # northward
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdn)))
    aspect = (np.degrees(np.arctan2(-dzdx, -dzdn)) + 360.0) % 360.0
    aspect = np.where((dzdx == 0) & (dzdn == 0), 0.0, aspect)
    return slope, aspect
