"""Well-known peer libraries behind the imputer interface, for comparison in the same benchmark.

PyPOTS (``pip install -e ".[peers]"``) imputes multivariate time series, so the adapter treats every
cell of the grid as one feature: a window of ``n_steps`` days over all cells is one sample
``(n_steps, n_cells)``. That keeps PyPOTS's own models and training exactly as they are, and it
shows what a strong time-series model does without the grid's geometry or the covariates.
Values are standardised with the observed mean and standard deviation; windows of
``n_steps`` days slide with ``stride`` and overlapping predictions are averaged.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import xarray as xr

from .data.contract import TARGET
from .imputation import Imputer, as_output, positive_int
from .models.st_transformer.data import window_starts


def to_windows(matrix: np.ndarray, n_steps: int, stride: int) -> tuple[np.ndarray, list[int]]:
    """(time, features) -> (samples, n_steps, features) windows and their start days.

    A series shorter than ``n_steps`` is padded with NaN at the end.
    """
    t = matrix.shape[0]
    if t < n_steps:
        matrix = np.concatenate([matrix, np.full((n_steps - t, matrix.shape[1]), np.nan)])
    starts = window_starts(matrix.shape[0], n_steps, stride)
    return np.stack([matrix[s : s + n_steps] for s in starts]), starts


def from_windows(windows: np.ndarray, starts: list[int], n_time: int) -> np.ndarray:
    """Average overlapping window predictions back onto ``(n_time, features)``."""
    n_steps = windows.shape[1]
    length = max(n_time, starts[-1] + n_steps)
    total = np.zeros((length, windows.shape[2]))
    count = np.zeros((length, 1))
    for s, w in zip(starts, windows, strict=True):
        total[s : s + n_steps] += w
        count[s : s + n_steps] += 1
    return (total / np.maximum(count, 1))[:n_time]


def _require_pypots() -> Any:
    try:
        import pypots.imputation as imputation
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            "PyPOTS is not installed: pip install -e '.[peers]' to compare with SAITS, BRITS "
            "and CSDI"
        ) from err
    return imputation


#: PyPOTS models the adapter builds.
PYPOTS_MODELS = ("SAITS", "BRITS", "CSDI")


class PyPOTSImputer(Imputer):
    """A PyPOTS imputation model with cells as features (``model`` is "SAITS", "BRITS" or "CSDI").

    CSDI is a diffusion model: its imputation is the median of ``n_samples`` draws (10, as the
    ST-Transformer paper's CSDI baseline).
    """

    name: ClassVar[str] = "pypots"

    def __init__(
        self,
        model: str = "SAITS",
        n_steps: int = 72,
        stride: int = 12,
        epochs: int = 30,
        batch_size: int = 16,
        seed: int = 0,
        device: str | None = None,
        n_samples: int = 10,
    ):
        if model not in PYPOTS_MODELS:
            raise ValueError(f"model={model!r}: expected one of {', '.join(PYPOTS_MODELS)}")
        positive_int("n_samples", n_samples)
        self.n_samples = int(n_samples)
        self.model = model
        self.n_steps = n_steps
        self.stride = stride
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.model_: Any = None
        self.mean_: float | None = None
        self.std_: float | None = None
        self.shape_: tuple[int, int] | None = None

    def _matrix(self, ds: xr.Dataset) -> np.ndarray:
        v = ds[TARGET].values
        return ((v.reshape(v.shape[0], -1) - self.mean_) / self.std_).astype(np.float32)

    def fit(self, ds: xr.Dataset) -> PyPOTSImputer:
        """Train the PyPOTS model on windows of the observed values of ``ds``."""
        imputation = _require_pypots()
        from pypots.optim import Adam
        from pypots.utils.random import set_random_seed

        values = ds[TARGET].values
        obs = values[np.isfinite(values)]
        if obs.size == 0:
            raise ValueError(f"variable '{TARGET}' has no observed value to fit on")
        self.mean_, self.std_ = float(obs.mean()), float(obs.std()) or 1.0
        self.shape_ = values.shape[1:]
        x, _ = to_windows(self._matrix(ds), self.n_steps, self.stride)
        set_random_seed(self.seed)
        n_features = x.shape[2]
        common = {
            "n_steps": self.n_steps,
            "n_features": n_features,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": Adam(lr=1e-3),
            "device": self.device,
            "saving_path": None,
            "verbose": False,
        }
        if self.model == "SAITS":
            net = imputation.SAITS(
                n_layers=2, d_model=128, n_heads=4, d_k=32, d_v=32, d_ffn=128, **common
            )
        elif self.model == "BRITS":
            net = imputation.BRITS(rnn_hidden_size=128, **common)
        else:
            net = imputation.CSDI(
                n_layers=2, n_heads=4, n_channels=32, d_time_embedding=64,
                d_feature_embedding=16, d_diffusion_embedding=64, n_diffusion_steps=50, **common,
            )  # fmt: skip
        net.fit({"X": x})
        self.model_ = net
        return self

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Impute windows of ``ds`` and average them back onto the cube."""
        self._check_fitted("model_")
        if ds[TARGET].shape[1:] != self.shape_:
            raise ValueError(f"grid {ds[TARGET].shape[1:]} differs from the fitted {self.shape_}")
        matrix = self._matrix(ds)
        x, starts = to_windows(matrix, self.n_steps, self.stride)
        if self.model == "CSDI":  # (windows, samples, steps, cells): the median of the draws
            draws = self.model_.impute({"X": x}, n_sampling_times=self.n_samples)
            filled = np.median(draws, axis=1)
        else:
            filled = self.model_.impute({"X": x})
        cube = from_windows(filled, starts, matrix.shape[0]) * self.std_ + self.mean_
        return as_output(ds, cube.reshape(ds[TARGET].shape), self)
