"""Conformalised quantiles of the diffusion samples (CQR, Romano et al. 2019), stratified by
gap class as :mod:`stimpute_core.models.conformal` does.

For each central interval ``[q, 1 - q]`` of the samples' quantiles, the conformity score of a
held-out entry is ``max(Q_q - y, y - Q_{1-q})``; the correction ``delta(q)`` is its
split-conformal quantile at coverage ``1 - 2q``, per class of :func:`~..conformal.strata`
(pooled with its kind of day, then with everything, below ``MIN_COUNT`` entries). Calibrated
quantiles are ``Q_q - delta(q)`` below the median and ``Q_{1-q} + delta(q)`` above; the median is
left as it is. ``delta`` may be negative (samples too spread): the interval then narrows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..conformal import MIN_COUNT, N_STRATA, STORED_LEVELS, from_json_floats, to_json_floats

#: Lower levels of the central intervals whose corrections are stored (0.005 .. 0.495).
LOWER = STORED_LEVELS[STORED_LEVELS < 0.5]
N_ROWS = N_STRATA + 3  # the classes, each kind of day pooled, everything pooled


def _groups(classes: np.ndarray) -> list[np.ndarray]:
    c = np.asarray(classes)
    return [c == k for k in range(N_STRATA)] + [c % 2 == 0, c % 2 == 1, np.ones(c.size, bool)]


@dataclass
class IntervalCorrections:
    """Per class (rows) and lower level (columns) the CQR correction, and each row's count."""

    table: np.ndarray
    counts: np.ndarray

    @classmethod
    def fit(cls, samples: np.ndarray, y: np.ndarray, classes: np.ndarray) -> IntervalCorrections:
        """From samples (S, n) at ``n`` held-out entries, their values and classes."""
        y = np.asarray(y, np.float64)
        if y.size < 2:
            raise ValueError(f"{y.size} held-out entries: at least 2 are needed to calibrate")
        lo = np.quantile(samples, LOWER, axis=0)
        hi = np.quantile(samples, 1.0 - LOWER, axis=0)
        scores = np.maximum(lo - y[None], y[None] - hi)
        table = np.full((N_ROWS, LOWER.size), np.nan)
        counts = np.zeros(N_ROWS, np.int64)
        for k, sel in enumerate(_groups(classes)):
            n = counts[k] = int(sel.sum())
            if n >= MIN_COUNT or (k == N_ROWS - 1):
                levels = np.minimum(1.0, np.ceil((n + 1) * (1 - 2 * LOWER)) / n)
                table[k] = [np.quantile(scores[j, sel], lv) for j, lv in enumerate(levels)]
        return cls(table, counts)

    def _row(self, k: int) -> int:
        if self.counts[k] >= MIN_COUNT:
            return k
        kind = N_STRATA + (k % 2)
        return kind if self.counts[kind] >= MIN_COUNT else N_ROWS - 1

    def apply(self, q: np.ndarray, levels: Sequence[float], classes: np.ndarray) -> np.ndarray:
        """Calibrated copy of the sample quantiles ``q`` (levels, *classes.shape)."""
        out = np.array(q, dtype=np.float64)
        for k in range(N_STRATA):
            sel = classes == k
            if not sel.any():
                continue
            row = self.table[self._row(k)]
            for j, level in enumerate(levels):
                if level == 0.5:
                    continue
                delta = np.interp(min(level, 1 - level), LOWER, row)
                out[j][sel] += -delta if level < 0.5 else delta
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": LOWER.tolist(),
            "counts": self.counts.tolist(),
            "table": [to_json_floats(r) for r in self.table],
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> IntervalCorrections:
        """Back from :meth:`to_dict`; ValueError naming ``where`` and the bad key otherwise."""
        if not isinstance(d, dict) or set(d) != {"levels", "counts", "table"}:
            raise ValueError(f"{where}: expected an object with levels, counts and table")
        try:
            levels = np.asarray(d["levels"], float)
            counts = np.asarray(d["counts"])
            table = np.array([from_json_floats(r) for r in d["table"]])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: expected lists of numbers ({err})") from err
        if levels.shape != LOWER.shape or not np.allclose(levels, LOWER):
            raise ValueError(f"{where}.levels: expected the {LOWER.size} levels 0.005 .. 0.495")
        if counts.shape != (N_ROWS,) or counts.dtype.kind != "i" or (counts < 0).any():
            raise ValueError(f"{where}.counts: expected {N_ROWS} counts of 0 or more")
        if table.shape != (N_ROWS, LOWER.size):
            raise ValueError(f"{where}.table: expected {N_ROWS} rows of {LOWER.size} values")
        used = counts >= MIN_COUNT
        used[-1] = True
        rows = table[used]
        if not np.isfinite(rows).all() or (np.abs(rows) > 1).any():
            raise ValueError(f"{where}.table: a used row holds a value that is not finite or "
                             "beyond ±1 m³/m³")  # fmt: skip
        return cls(table, counts)
