"""Same-day smoothing of departures from a reference: the second stage of regression kriging.

A reference that sees only each cell's own covariates misses the day's weather anomaly; the
day's observed entries show it as their departures from the reference. Averaging those
departures around each entry with Gaussian weights, the entry itself left out, and shrinking
towards zero where few are near, estimates the anomaly at every entry of the day. The kernel
(width and shrinkage) is chosen by leave-one-out error on the observations themselves.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Candidate (Gaussian width in cells, shrinkage) of the same-day smoother; :func:`choose_smoother`
#: keeps the one with the lowest leave-one-out error on the observations it is given.
SMOOTHERS = tuple(
    (sigma, shrink)
    for sigma in (1.0, 1.5, 2.0, 3.0, 4.0, 8.0)
    for shrink in (0.005, 0.02, 0.1, 0.5)
)


def smoothed_departures(departures: np.ndarray, sigma: float, shrink: float) -> np.ndarray:
    """(time, y, x): each day's observed ``departures`` (NaN where none) averaged around every
    entry with Gaussian weights of width ``sigma`` cells, **each entry's own value left out**,
    and shrunk towards zero (``shrink``: the weight of a zero prior, in units of a fully
    observed neighbourhood). A day with no observation gets zero."""
    seen = np.isfinite(departures)
    d = np.where(seen, departures, 0.0)
    spec = {"sigma": (0, sigma, sigma), "mode": "constant", "truncate": 3.0}
    num = ndimage.gaussian_filter(d, **spec)
    den = ndimage.gaussian_filter(seen.astype(np.float64), **spec)
    delta = np.zeros((1, 7, 7))
    delta[0, 3, 3] = 1.0
    own = float(ndimage.gaussian_filter(delta, **spec)[0, 3, 3])  # an entry's weight on itself
    num = num - own * d
    den = np.maximum(den - own * seen, 0.0)
    return num / (den + shrink)


def choose_smoother(departures: np.ndarray) -> tuple[float, float]:
    """The (width, shrinkage) of :data:`SMOOTHERS` whose leave-one-out estimate of each observed
    departure (NaN where none) from the others of its day has the lowest mean absolute error."""
    seen = np.isfinite(departures)
    if not seen.any():
        raise ValueError("no observed departure to choose a smoother on")
    errors = {
        option: float(np.abs(departures - smoothed_departures(departures, *option))[seen].mean())
        for option in SMOOTHERS
    }
    return min(errors, key=errors.get)
