"""Windows in time and patches in space, shared by every model that works on pieces of the cube.

A model sees the cube as overlapping time windows (and, for the ST-Transformer, square patches);
its predictions on overlapping pieces are averaged back onto the cube by :class:`OverlapMean`.
"""

from __future__ import annotations

import numpy as np


def window_starts(n_time: int, window: int, stride: int) -> list[int]:
    """Start days of windows covering ``0..n_time-1``; the last window ends on the last day."""
    if n_time <= window:
        return [0]
    starts = list(range(0, n_time - window + 1, stride))
    if starts[-1] != n_time - window:
        starts.append(n_time - window)
    return starts


def patch_origins(h: int, w: int, patch: int) -> list[tuple[int, int]]:
    """Top-left corners of the patches tiling a padded ``h x w`` grid."""
    return [(r, c) for r in range(0, h, patch) for c in range(0, w, patch)]


def take(a: np.ndarray, t0: int, r0: int, c0: int, window: int, patch: int) -> np.ndarray:
    """One sample ``(window, patch*patch, ...)`` of a ``(T, H, W, ...)`` array, padding short time."""
    part = a[t0 : t0 + window, r0 : r0 + patch, c0 : c0 + patch]
    if part.shape[0] < window:
        pad = [(0, window - part.shape[0])] + [(0, 0)] * (part.ndim - 1)
        part = np.pad(
            part, pad, constant_values=np.nan if a.dtype.kind == "f" and a.ndim == 3 else 0
        )
    return part.reshape(window, patch * patch, *a.shape[3:])


class OverlapMean:
    """Running mean of predictions on overlapping pieces of an array of ``shape``.

    ``add(values, t0, ...)`` adds a piece whose leading corner is at ``(t0, ...)``; ``mean()``
    divides each entry by the number of pieces that covered it (entries no piece covered are 0).
    """

    def __init__(self, shape: tuple[int, ...]):
        self.total = np.zeros(shape, np.float64)
        self.count = np.zeros(shape, np.float64)

    def add(self, values: np.ndarray, *corner: int) -> None:
        """Add ``values`` at ``corner`` (one start per leading axis of ``values``)."""
        where = tuple(slice(c, c + n) for c, n in zip(corner, values.shape, strict=False))
        self.total[where] += values
        self.count[where] += 1

    def mean(self) -> np.ndarray:
        """The average of every piece added, entry by entry."""
        return self.total / np.maximum(self.count, 1)
