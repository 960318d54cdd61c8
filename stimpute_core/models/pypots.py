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

from ..data.contract import TARGET
from .base import Imputer, as_output, integer, positive_int, positive_number
from .windows import OverlapMean, window_starts


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
    acc = OverlapMean((max(n_time, starts[-1] + n_steps), windows.shape[2]))
    for s, w in zip(starts, windows, strict=True):
        acc.add(w, s)
    return acc.mean()[:n_time]


def _require_pypots() -> Any:
    try:
        import pypots.imputation as imputation
    except ImportError as err:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            "PyPOTS is not installed: pip install -e '.[peers]' to compare with SAITS, BRITS "
            "and CSDI"
        ) from err
    return imputation


class _PyPOTSImputer(Imputer):
    """A PyPOTS imputation model with cells as features, trained on overlapping windows.

    Settings shared by the three peers; each subclass adds its network's sizes (those of the
    ST-Transformer paper's runs) and builds the network in :meth:`_network`.
    """

    transferable: ClassVar[bool] = False

    def __init__(
        self,
        n_steps: int = 72,
        stride: int = 12,
        epochs: int = 30,
        batch_size: int = 16,
        lr: float = 1e-3,
        seed: int = 0,
        device: str | None = None,
    ):
        self.n_steps = n_steps
        self.stride = stride
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.device = device

    def _validate_params(self) -> None:
        for count in ("n_steps", "stride", "epochs", "batch_size"):
            positive_int(count, getattr(self, count))
        if not positive_number(self.lr):
            raise ValueError(f"lr={self.lr!r}: expected a positive number")
        integer("seed", self.seed)

    def _network(self, imputation: Any, common: dict) -> Any:
        raise NotImplementedError

    def _matrix(self, ds: xr.Dataset) -> np.ndarray:
        v = ds[TARGET].values
        return ((v.reshape(v.shape[0], -1) - self.mean_) / self.std_).astype(np.float32)

    def fit(self, ds: xr.Dataset) -> _PyPOTSImputer:
        """Train the PyPOTS model on windows of the observed values of ``ds``."""
        self._validate_params()
        imputation = _require_pypots()
        from pypots.optim import Adam
        from pypots.utils.random import set_random_seed

        values = ds[TARGET].values
        obs = values[np.isfinite(values)]
        if obs.size == 0:
            raise ValueError(f"variable '{TARGET}' has no observed value to fit on")
        self.mean_, self.std_ = float(obs.mean()), float(obs.std()) or 1.0
        self._remember_grid(ds)
        x, _ = to_windows(self._matrix(ds), self.n_steps, self.stride)
        set_random_seed(self.seed)
        common = {
            "n_steps": self.n_steps,
            "n_features": x.shape[2],
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": Adam(lr=self.lr),
            "device": self.device,
            "saving_path": None,
            "verbose": False,
        }
        net = self._network(imputation, common)
        net.fit({"X": x})
        self.model_ = net
        return self

    def _impute_windows(self, x: np.ndarray) -> np.ndarray:
        return self.model_.impute({"X": x})

    def impute(self, ds: xr.Dataset) -> xr.DataArray:
        """Impute windows of ``ds`` and average them back onto the cube."""
        self._check_fitted("model_")
        self._check_grid(ds)
        matrix = self._matrix(ds)
        x, starts = to_windows(matrix, self.n_steps, self.stride)
        cube = from_windows(self._impute_windows(x), starts, matrix.shape[0])
        return as_output(ds, (cube * self.std_ + self.mean_).reshape(ds[TARGET].shape), self)


class SAITSImputer(_PyPOTSImputer):
    """SAITS (self-attention imputation) from PyPOTS."""

    name: ClassVar[str] = "saits"

    def __init__(
        self,
        n_layers: int = 2,
        d_model: int = 128,
        n_heads: int = 4,
        d_k: int = 32,
        d_v: int = 32,
        d_ffn: int = 128,
        n_steps: int = 72,
        stride: int = 12,
        epochs: int = 30,
        batch_size: int = 16,
        lr: float = 1e-3,
        seed: int = 0,
        device: str | None = None,
    ):
        super().__init__(n_steps, stride, epochs, batch_size, lr, seed, device)
        self.n_layers = n_layers
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_k = d_k
        self.d_v = d_v
        self.d_ffn = d_ffn

    def _network(self, imputation: Any, common: dict) -> Any:
        return imputation.SAITS(
            n_layers=self.n_layers, d_model=self.d_model, n_heads=self.n_heads, d_k=self.d_k,
            d_v=self.d_v, d_ffn=self.d_ffn, **common,
        )  # fmt: skip


class BRITSImputer(_PyPOTSImputer):
    """BRITS (bidirectional recurrent imputation) from PyPOTS."""

    name: ClassVar[str] = "brits"

    def __init__(
        self,
        rnn_hidden_size: int = 128,
        n_steps: int = 72,
        stride: int = 12,
        epochs: int = 30,
        batch_size: int = 16,
        lr: float = 1e-3,
        seed: int = 0,
        device: str | None = None,
    ):
        super().__init__(n_steps, stride, epochs, batch_size, lr, seed, device)
        self.rnn_hidden_size = rnn_hidden_size

    def _network(self, imputation: Any, common: dict) -> Any:
        return imputation.BRITS(rnn_hidden_size=self.rnn_hidden_size, **common)


class CSDIImputer(_PyPOTSImputer):
    """CSDI (conditional score-based diffusion) from PyPOTS: its imputation is the median of
    ``n_samples`` draws (10, as the ST-Transformer paper's CSDI baseline)."""

    name: ClassVar[str] = "csdi"

    def __init__(
        self,
        n_layers: int = 2,
        n_heads: int = 4,
        n_channels: int = 32,
        d_time_embedding: int = 64,
        d_feature_embedding: int = 16,
        d_diffusion_embedding: int = 64,
        n_diffusion_steps: int = 50,
        n_samples: int = 10,
        n_steps: int = 72,
        stride: int = 12,
        epochs: int = 30,
        batch_size: int = 16,
        lr: float = 1e-3,
        seed: int = 0,
        device: str | None = None,
    ):
        super().__init__(n_steps, stride, epochs, batch_size, lr, seed, device)
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.n_channels = n_channels
        self.d_time_embedding = d_time_embedding
        self.d_feature_embedding = d_feature_embedding
        self.d_diffusion_embedding = d_diffusion_embedding
        self.n_diffusion_steps = n_diffusion_steps
        self.n_samples = n_samples

    def _validate_params(self) -> None:
        super()._validate_params()
        positive_int("n_samples", self.n_samples)

    def _network(self, imputation: Any, common: dict) -> Any:
        return imputation.CSDI(
            n_layers=self.n_layers, n_heads=self.n_heads, n_channels=self.n_channels,
            d_time_embedding=self.d_time_embedding, d_feature_embedding=self.d_feature_embedding,
            d_diffusion_embedding=self.d_diffusion_embedding,
            n_diffusion_steps=self.n_diffusion_steps, **common,
        )  # fmt: skip

    def _impute_windows(self, x: np.ndarray) -> np.ndarray:
        # (windows, samples, steps, cells): the median of the draws
        draws = self.model_.impute({"X": x}, n_sampling_times=self.n_samples)
        return np.median(draws, axis=1)


#: The PyPOTS peers by their ``name``.
PEERS: dict[str, type[_PyPOTSImputer]] = {
    cls.name: cls for cls in (SAITSImputer, BRITSImputer, CSDIImputer)
}
