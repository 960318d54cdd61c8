"""From a contract Dataset to the ST-Transformer's tensors and back.

- :class:`Normalizer` holds what a checkpoint must remember about the data: the target's mean and
  standard deviation over the observed training values, the covariate names and order, each
  covariate's mean and standard deviation, the land-cover classes and the grid spacing.
- :func:`encode` turns a Dataset into a standardised target cube ``y(T, H, W)`` (NaN where not
  observed) and a covariate cube ``u(T, H, W, D)``: for each time-varying covariate its
  standardised value (NaN filled with 0, the mean) and a missing flag; the standardised static
  fields; the land-cover one-hot. Grids are padded to whole patches (padding is never observed).
- :class:`SampleSet` cuts the cube into samples (windows of ``T`` days, stride ``s``, patches of
  ``P x P`` cells; see :mod:`stimpute_core.models.windows`).
- :func:`fingerprint` digests a Dataset's content, so encoded inputs can be kept for the next
  call on the same data.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import xarray as xr

from ...data.contract import LAND_COVER, TARGET, covariate_names
from ..windows import patch_origins, take, window_starts


class IncompatibleDataError(ValueError):
    """A Dataset does not match what a model was trained on (covariates, units or grid)."""


@dataclass
class Normalizer:
    """Standardisation and covariate layout learned from the training Dataset."""

    y_mean: float
    y_std: float
    dynamic: list[str]
    static: list[str]
    dynamic_mean: list[float]
    dynamic_std: list[float]
    static_mean: list[float]
    static_std: list[float]
    land_cover_classes: list[int]
    units: dict[str, str]
    dx: float
    dy: float
    #: Channels computed by the imputer (``prior``, cell context), after the covariates.
    extra: list[str] = field(default_factory=list)

    @property
    def n_covariates(self) -> int:
        return (
            2 * len(self.dynamic)
            + len(self.static)
            + len(self.land_cover_classes)
            + len(self.extra)
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        """The normalizer saved by :meth:`to_dict`, every field checked: its statistics decide
        every imputed value (a NaN mean or a zero spread would make them all NaN)."""
        fields = list(cls.__dataclass_fields__)
        unknown, missing = sorted(set(d) - set(fields)), [f for f in fields[:-1] if f not in d]
        if unknown or missing:
            what = f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}"
            raise ValueError(f"{what}: expected the keys {fields}")
        norm = cls(**d)
        norm.validate()
        return norm

    def validate(self) -> None:
        """ValueError naming the first field that is not what :meth:`fit` makes."""
        _number("y_mean", self.y_mean, 0.0, 1.0, "from 0 to 1 m³/m³")
        _number("y_std", self.y_std, 0.0, 1.0, "above 0 and at most 1 m³/m³", above=True)
        _number("dx", self.dx, 0.0, math.inf, "of metres, at least 0")
        _number("dy", self.dy, 0.0, math.inf, "of metres, at least 0")
        names = []
        for group in ("dynamic", "static", "extra"):
            values = getattr(self, group)
            if not isinstance(values, list) or not all(isinstance(n, str) and n for n in values):
                raise ValueError(f"{group}={values!r}: expected a list of names")
            names += values
        if len(set(names)) < len(names):
            raise ValueError(f"a name is listed twice among {names}")
        for group in ("dynamic", "static"):
            count = len(getattr(self, group))
            for kind in ("mean", "std"):
                values = getattr(self, f"{group}_{kind}")
                if not isinstance(values, list) or len(values) != count:
                    raise ValueError(
                        f"{group}_{kind}={values!r}: expected {count} numbers, one per {group} "
                        "covariate"
                    )
                for value in values:
                    positive = kind == "std"
                    limits = "above 0" if positive else "finite"
                    _number(f"{group}_{kind}", value, 0.0 if positive else -math.inf, math.inf,
                            limits, above=positive)  # fmt: skip
        classes = self.land_cover_classes
        if (
            not isinstance(classes, list)
            or not all(type(c) is int for c in classes)
            or (len(set(classes)) < len(classes))
        ):
            raise ValueError(f"land_cover_classes={classes!r}: expected a list of distinct codes")
        want = {TARGET, *self.dynamic, *self.static}
        units = self.units
        if (
            not isinstance(units, dict)
            or set(units) != want
            or not all(isinstance(u, str) for u in units.values())
        ):
            raise ValueError(f"units={units!r}: expected the units of {sorted(want)}")

    @classmethod
    def fit(
        cls, ds: xr.Dataset, *, use_covariates: bool = True, extra: Sequence[str] = ()
    ) -> Normalizer:
        """Learn statistics from the observed values and covariates of ``ds``; ``extra`` names
        the imputer's own channels (scaled by the target's statistics, nothing to learn)."""
        y = ds[TARGET].values
        obs = y[np.isfinite(y)]
        if obs.size == 0:
            raise ValueError(f"variable '{TARGET}' has no observed value to learn from")
        dynamic, static = covariate_names(ds) if use_covariates else ([], [])

        def stats(name: str) -> tuple[float, float]:
            v = ds[name].values
            v = v[np.isfinite(v)]
            if v.size == 0:
                return 0.0, 1.0
            sd = float(v.std())
            return float(v.mean()), sd if sd > 0 else 1.0

        dyn = [stats(n) for n in dynamic]
        sta = [stats(n) for n in static]
        classes = (
            sorted(int(c) for c in np.unique(ds[LAND_COVER].values))
            if use_covariates and LAND_COVER in ds
            else []
        )
        x, yc = ds["x"].values, ds["y"].values
        return cls(
            y_mean=float(obs.mean()),
            y_std=float(obs.std()) or 1.0,
            dynamic=dynamic,
            static=static,
            dynamic_mean=[m for m, _ in dyn],
            dynamic_std=[s for _, s in dyn],
            static_mean=[m for m, _ in sta],
            static_std=[s for _, s in sta],
            land_cover_classes=classes,
            units={n: str(ds[n].attrs.get("units", "")) for n in [TARGET, *dynamic, *static]},
            dx=float(abs(x[1] - x[0])) if len(x) > 1 else 0.0,
            dy=float(abs(yc[1] - yc[0])) if len(yc) > 1 else 0.0,
            extra=list(extra),
        )

    def check(self, ds: xr.Dataset) -> None:
        """Raise :class:`IncompatibleDataError` saying what differs between ``ds`` and training."""
        problems = []
        dynamic, static = covariate_names(ds)
        missing = [n for n in self.dynamic + self.static if n not in dynamic + static]
        if missing:
            problems.append(f"covariates {missing} used in training are missing")
        extra = [n for n in dynamic + static if n not in self.dynamic + self.static]
        if extra and (self.dynamic or self.static):
            problems.append(f"covariates {extra} were not used in training (drop them)")
        for name, unit in self.units.items():
            if name in ds and str(ds[name].attrs.get("units", "")) != unit:
                problems.append(
                    f"'{name}' has units '{ds[name].attrs.get('units', '')}', trained with '{unit}'"
                )
        x, y = ds["x"].values, ds["y"].values
        for label, want, coord in (("x", self.dx, x), ("y", self.dy, y)):
            if (
                len(coord) > 1
                and want
                and not np.isclose(abs(coord[1] - coord[0]), want, rtol=1e-3)
            ):
                problems.append(
                    f"grid spacing in {label} is {abs(coord[1] - coord[0]):.1f} m, trained on {want:.1f} m"
                )
        if self.land_cover_classes and LAND_COVER not in ds:
            problems.append(f"'{LAND_COVER}' used in training is missing")
        if problems:
            raise IncompatibleDataError(
                "the Dataset does not match the model's training data: " + "; ".join(problems)
            )


def _number(name: str, value, low: float, high: float, what: str, *, above: bool = False):
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value > low if above else value >= low) or value > high:
        raise ValueError(f"{name}={value!r}: expected a finite number {what}")


def padded_size(n: int, patch: int) -> int:
    return int(np.ceil(n / patch) * patch)


def encode(
    ds: xr.Dataset,
    norm: Normalizer,
    patch: int,
    extra: Mapping[str, np.ndarray] | None = None,
    offset: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised target ``y(T, H', W')`` with NaN where unobserved and covariates ``u(T, H', W', D)``.

    ``H'``, ``W'`` are the grid padded up to whole patches. ``extra`` holds the imputer's own
    channels by name ((time, y, x) or (y, x) arrays in soil-moisture units), exactly those of
    ``norm.extra``. With ``offset`` (time, y, x), the target is ``(value - offset) / y_std``: the
    departure from a prior estimate; without it, ``(value - y_mean) / y_std``.
    """
    t, h, w = ds[TARGET].shape
    hp, wp = padded_size(h, patch), padded_size(w, patch)
    extra = dict(extra or {})
    if sorted(extra) != sorted(norm.extra):
        raise IncompatibleDataError(
            f"the model needs the input channels {norm.extra}, got {sorted(extra)}"
        )
    y = np.full((t, hp, wp), np.nan, np.float32)
    centre = norm.y_mean if offset is None else offset
    y[:, :h, :w] = (ds[TARGET].values - centre) / norm.y_std
    u = np.zeros((t, hp, wp, norm.n_covariates), np.float32)
    k = 0
    for name, mean, sd in zip(norm.dynamic, norm.dynamic_mean, norm.dynamic_std, strict=True):
        v = ds[name].values
        finite = np.isfinite(v)
        u[:, :h, :w, k] = np.where(finite, (v - mean) / sd, 0.0)
        u[:, :h, :w, k + 1] = (~finite).astype(np.float32)
        k += 2
    for name, mean, sd in zip(norm.static, norm.static_mean, norm.static_std, strict=True):
        v = ds[name].values
        u[:, :h, :w, k] = np.where(np.isfinite(v), (v - mean) / sd, 0.0)[None]
        k += 1
    if norm.land_cover_classes:
        lc = ds[LAND_COVER].values
        for code in norm.land_cover_classes:
            u[:, :h, :w, k] = (lc == code).astype(np.float32)[None]
            k += 1
    for name in norm.extra:
        v = np.asarray(extra[name], dtype=np.float64)
        # Spreads are scaled only; levels are centred on the target's mean too.
        centre = 0.0 if name.endswith("_sd") or name.endswith("_offset") else norm.y_mean
        u[:, :h, :w, k] = np.broadcast_to((v - centre) / norm.y_std, (t, h, w))
        k += 1
    return y, u


class SampleSet:
    """All (window, patch) samples of an encoded cube."""

    def __init__(self, y: np.ndarray, u: np.ndarray, window: int, stride: int, patch: int):
        self.y, self.u, self.window, self.patch = y, u, window, patch
        t, h, w = y.shape
        self.index = [
            (t0, r0, c0)
            for t0 in window_starts(t, window, stride)
            for r0, c0 in patch_origins(h, w, patch)
        ]

    def __len__(self) -> int:
        return len(self.index)

    def get(self, i: int, *, blocked: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Target (T, N) and covariates (T, N, D) of sample ``i``; ``blocked`` cells become NaN."""
        t0, r0, c0 = self.index[i]
        y = take(self.y, t0, r0, c0, self.window, self.patch).copy()
        if blocked is not None:
            y[take(blocked, t0, r0, c0, self.window, self.patch).astype(bool)] = np.nan
        return y, take(self.u, t0, r0, c0, self.window, self.patch)


def fingerprint(ds: xr.Dataset) -> str:
    """A digest of every coordinate and variable of ``ds`` (its content, not its identity)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(map(str, ds.variables)):
        values = np.ascontiguousarray(ds[name].values)
        digest.update(f"{name}{values.dtype}{values.shape}".encode())
        digest.update(values.tobytes() if values.dtype != object else repr(values).encode())
    return digest.hexdigest()
