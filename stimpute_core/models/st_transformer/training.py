"""Self-supervised training of the ST-Transformer: samples, masking, the loop, progress and cancel.

The model never sees a value it is scored on. Per sample, a fraction ``p`` drawn from
``mask_fractions`` (the paper's {0.2, 0.5, 0.8}) of the observed entries is hidden, as whole days
(``mask_kind="time_slice"``) or random entries (``"point"``), and the L1 loss is taken on the
hidden entries only. A validation split of observed entries (``val_fraction``, chosen with the
same kind) is hidden from every training input and scores each epoch; the best weights are kept
(early stopping with ``patience``). Adam with a cosine learning rate from ``lr`` to ``lr_min`` over
the steps or the time budget (``max_minutes``), whichever ends first,
gradient clipping at ``grad_clip``.

Progress goes to ``callbacks``: each is called with a :class:`TrainingProgress` after every step
and every validation. ``cancel`` is any object with ``is_set()`` (a ``threading.Event``): it is
checked between steps.

Under ``torchrun`` (a process group joined, see :mod:`.distributed`) the network is trained by
``DistributedDataParallel``: each process takes its shard of every global batch (same shuffle
and masks on every process), the loss is normalised by the global count of hidden entries, and
validation sums over processes; only rank 0 calls ``callbacks``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ...masks import draw_days, draw_points, holdout_mask
from ..base import integer, positive_int, positive_number
from ..windows import take
from . import distributed as ddp
from .core import STTransformer
from .data import SampleSet
from .devices import PRECISIONS, autocast_dtype, bf16_native, pick_device  # noqa: F401 (callers)
from .forecast import blank_future, forecast_days

#: Self-supervised tasks: impute whole days or single entries, or forecast the window's end.
TRAINING_MASKS = ("time_slice", "point", "forecast")


@dataclass(frozen=True)
class TrainingSettings:
    """How to train (not what to build: that is the network's configuration)."""

    epochs: int = 200
    batch_size: int = 16
    batches_per_epoch: int | None = None
    lr: float = 1e-3
    lr_min: float = 1e-4
    grad_clip: float = 5.0
    patience: int = 40
    stride: int = 12
    mask_kind: str = "time_slice"
    mask_fractions: tuple[float, ...] = (0.2, 0.5, 0.8)
    val_fraction: float = 0.1
    max_minutes: float | None = None
    #: ``mask_kind="forecast"``: the days hidden at the end of every window.
    forecast_days: int = 7
    seed: int = 0
    device: str | None = None
    amp: bool = True

    def __post_init__(self) -> None:
        """Refuse settings that would fail, or silently do nothing, once training has started."""
        optional = [n for n in ("batches_per_epoch",) if getattr(self, n) is not None]
        for name in ("epochs", "batch_size", "patience", "stride", "forecast_days", *optional):
            positive_int(name, getattr(self, name))
        optional = [n for n in ("max_minutes",) if getattr(self, n) is not None]
        for name in ("lr", "grad_clip", *optional):
            if not positive_number(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a positive number")
        if not (self.lr_min == 0 or positive_number(self.lr_min)) or self.lr_min > self.lr:
            raise ValueError(f"lr_min={self.lr_min!r}: expected a number from 0 to lr={self.lr}")
        for name in ("val_fraction", "mask_fractions"):
            value = getattr(self, name)
            values = list(value) if isinstance(value, list | tuple) else [value]
            if not values or not all(positive_number(f) and f < 1 for f in values):
                raise ValueError(f"{name}={value!r}: expected fractions between 0 and 1")
        if self.mask_kind not in TRAINING_MASKS:
            raise ValueError(f"mask_kind={self.mask_kind!r}: expected one of {TRAINING_MASKS}")
        if integer("seed", self.seed) < 0:
            raise ValueError(f"seed={self.seed!r}: expected a non-negative integer")
        if not (self.device is None or isinstance(self.device, str)):
            raise ValueError(f"device={self.device!r}: expected cpu, cuda or cuda:N")
        if not isinstance(self.amp, bool):
            raise ValueError(f"amp={self.amp!r}: expected True or False")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mask_fractions"] = list(self.mask_fractions)
        return d


@dataclass
class TrainingProgress:
    """What a callback receives."""

    phase: str  # "train", "validate" or "done"
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    train_loss: float | None = None
    val_mae: float | None = None
    best_val_mae: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    history: list[dict] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Share of the work done: by time when an ETA is known (time budgets, early stops)."""
        if self.phase == "done":
            return 1.0
        if self.eta_s is not None and self.elapsed_s > 0:
            return self.elapsed_s / (self.elapsed_s + self.eta_s)
        total = self.epochs * max(self.steps_per_epoch, 1)
        return min(1.0, ((self.epoch - 1) * self.steps_per_epoch + self.step) / max(total, 1))


#: Fewest observed entries from which a validation split is drawn.
MIN_VALIDATION_ENTRIES = 20


def validation_mask(
    observed: np.ndarray,
    kind: str,
    fraction: float,
    seed: int,
    *,
    window: int = 72,
    horizon: int = 7,
) -> np.ndarray:
    """The observed entries kept out of every training input to score each epoch: ``fraction``
    of them, as whole days (``kind="time_slice"``) or single entries (``"point"``); for
    ``"forecast"``, the last ``horizon`` days of every validation window (:func:`forecast_days`),
    so that each epoch is scored on forecasts.

    Without validation entries no epoch can be scored and early stopping would keep whatever the
    last epoch left ("best validation MAE nan"), so too small a selection (fewer than
    :data:`MIN_VALIDATION_ENTRIES` observed entries, or too few observed days to hold out one
    whole day) is a ValueError saying what is missing, before any training.
    """
    obs = np.asarray(observed, dtype=bool)
    n_obs = int(obs.sum())
    mask = np.zeros_like(obs)
    if n_obs >= MIN_VALIDATION_ENTRIES and kind == "forecast":
        mask = forecast_days(obs.shape[0], window, horizon)[:, None, None] & obs
    elif n_obs >= MIN_VALIDATION_ENTRIES:
        mask = holdout_mask(obs, kind, fraction, seed=seed)
    if not mask.any():
        days = int(obs.reshape(obs.shape[0], -1).any(axis=1).sum())
        need = f"at least {MIN_VALIDATION_ENTRIES} observed entries"
        if kind != "point":
            min_days = next(n for n in range(1, 10**6) if round(fraction * n) >= 1)
            need += f" on at least {min_days} observed days (whole days are held out)"
        raise ValueError(
            f"no observed entries left for validation: the data hold {n_obs} observed "
            f"entr{'y' if n_obs == 1 else 'ies'} on {days} day(s); holding out "
            f"{fraction:.0%} for validation needs {need}: choose a larger region or period"
        )
    return mask


def hide_entries(
    observed: np.ndarray, kind: str, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of observed entries of one (T, N) sample to hide: whole days or points
    (at least one of them; the draws of :mod:`stimpute_core.masks`)."""
    if kind == "time_slice":
        return draw_days(observed, fraction, rng, at_least_one=True)
    if kind == "point":
        return draw_points(observed, fraction, rng, at_least_one=True)
    raise ValueError(f"mask_kind={kind!r}: expected 'time_slice' or 'point'")


def _cosine_lr(progress: float, lr: float, lr_min: float) -> float:
    """Cosine decay from ``lr`` to ``lr_min`` as ``progress`` goes from 0 to 1."""
    return lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def train_network(
    net: STTransformer,
    samples: SampleSet,
    val_mask: np.ndarray,
    settings: TrainingSettings,
    *,
    y_std: float,
    dynamic_channels: int = 0,
    callbacks: Sequence[Callable[[TrainingProgress], None]] = (),
    cancel=None,
) -> tuple[list[dict], bool]:
    """Train ``net`` in place; return the per-epoch history and whether it was cancelled.

    ``val_mask`` (T, H, W) marks observed entries kept out of every training input and used for
    early stopping (MAE in original units, via ``y_std``). ``mask_kind="forecast"``: every
    sample hides its last ``forecast_days`` days, and half the samples also lose those days'
    time-varying covariates (the first ``dynamic_channels`` channels), so the network learns
    to forecast with and without the future's weather.
    """
    device = pick_device(settings.device)
    world = ddp.world_size()
    if world > 1:
        device, callbacks = ddp.local_device(device), callbacks if ddp.is_main() else ()
        if settings.batch_size < world:
            raise ValueError(f"batch_size={settings.batch_size} < {world} processes")
        ddp.check_same(data=samples.y, inputs=samples.u, validation=val_mask)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net.to(device)
    model = ddp.wrap(net, device) if world > 1 else net  # trains; ``net`` holds the weights
    use_amp = settings.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)

    observed = np.isfinite(samples.y)
    usable = observed & ~val_mask
    ahead = settings.forecast_days if settings.mask_kind == "forecast" else 0
    if ahead:  # every start day: with a fixed stride, passes would fall on fixed lead days
        samples = SampleSet(samples.y, samples.u, samples.window, 1, samples.patch)
    train_ids = [
        i
        for i in range(len(samples))
        if (part := take(usable, *samples.index[i], samples.window, samples.patch)).sum() >= 2
        and (not ahead or part[-ahead:].any())  # a forecast sample has something to forecast
    ]
    # Validation windows do not overlap (stride = window): each validation entry counts once.
    val_samples = SampleSet(samples.y, samples.u, samples.window, samples.window, samples.patch)
    val_ids = [
        i
        for i in range(len(val_samples))
        if take(val_mask & observed, *val_samples.index[i], samples.window, samples.patch).any()
    ]
    if not train_ids:
        raise ValueError("no training sample holds observed values: the selection is too sparse")
    bs = settings.batch_size
    steps = settings.batches_per_epoch or max(1, math.ceil(len(train_ids) / bs))
    total_steps = settings.epochs * steps
    history: list[dict] = []
    best, best_state, bad_epochs = math.inf, None, 0
    t_start = time.perf_counter()
    cancelled = False
    global_step = 0
    # For learning curves: samples and observed (information-carrying) cell-days trained on.
    samples_seen = observed_seen = 0

    def schedule_done(elapsed: float | None = None) -> float:
        """Share of the schedule done: of the steps, or of the time budget when it ends first,
        so the learning rate has decayed when a time budget runs out."""
        done = global_step / max(total_steps, 1)
        if settings.max_minutes:
            elapsed = time.perf_counter() - t_start if elapsed is None else elapsed
            done = max(done, elapsed / (60 * settings.max_minutes))
        return min(done, 1.0)

    def emit(progress: TrainingProgress) -> None:
        for cb in callbacks:
            cb(progress)

    def batch(ids: Sequence[int], training: bool, keep: slice | None = None):
        """Inputs of ``ids`` at positions ``keep`` (all drawn: alike on every process)."""
        source = samples if training else val_samples
        ys, us, vis, hid = [], [], [], []
        for k, i in enumerate(ids):
            y, u = source.get(i, blocked=val_mask if training else None)
            obs = np.isfinite(y)
            if training and settings.mask_kind == "forecast":
                hidden = obs.copy()
                hidden[: -settings.forecast_days] = False
                if dynamic_channels and rng.random() < 0.5:
                    u = blank_future(u, settings.forecast_days, dynamic_channels)
            elif training:
                p = float(rng.choice(settings.mask_fractions))
                hidden = hide_entries(obs, settings.mask_kind, p, rng)
            else:
                t0, r0, c0 = source.index[i]
                hidden = take(val_mask, t0, r0, c0, source.window, source.patch).astype(bool) & obs
            if keep is not None and not keep.start <= k < keep.stop:
                continue
            ys.append(np.nan_to_num(y))
            us.append(u)
            vis.append(obs & ~hidden)
            hid.append(hidden)
        to = lambda a, dt=torch.float32: torch.as_tensor(np.stack(a), dtype=dt, device=device)  # noqa: E731
        return to(ys), to(us), to(vis, torch.bool), to(hid, torch.bool)

    # The starting weights compete too: a network that corrects a prior starts at the prior,
    # and training that only adds noise must not replace it.
    if val_ids:
        best = evaluate(net, val_ids, batch, 2 * bs, device, use_amp, amp_dtype) * y_std
        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        history.append(
            {"epoch": 0, "train_loss": None, "val_mae": best, "elapsed_s": 0.0,
             "samples_seen": 0, "observed_seen": 0}
        )  # fmt: skip

    for epoch in range(1, settings.epochs + 1):
        net.train()
        order = rng.permutation(train_ids)
        losses = []
        for step in range(1, steps + 1):
            stop = [cancel is not None and cancel.is_set(), time.perf_counter() - t_start]
            asked, elapsed = ddp.from_rank0(stop) if world > 1 else stop  # rank 0's, if several
            if asked:
                cancelled = True
                break
            if settings.max_minutes and elapsed > 60 * settings.max_minutes:
                break
            start = ((step - 1) * bs) % len(order)
            ids = [order[(start + k) % len(order)] for k in range(bs)]
            y, u, visible, hidden = batch(ids, True, ddp.shard(bs) if world > 1 else None)
            counts = [int(hidden.sum()), int((visible | hidden).sum())]
            n_hidden, n_seen = ddp.sum_all(counts) if world > 1 else counts
            if not n_hidden:
                continue
            samples_seen += len(ids)
            observed_seen += int(n_seen)
            for group in opt.param_groups:
                done = schedule_done(elapsed if world > 1 else None)
                group["lr"] = _cosine_lr(done, settings.lr, settings.lr_min)
            scale = world / n_hidden if world > 1 else None
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                pred, aux = model(y, visible, u if u.shape[-1] else None)
                loss = hidden_error(pred, y, hidden, scale)
                for extra in aux:
                    loss = loss + hidden_error(extra, y, hidden, scale)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(net.parameters(), settings.grad_clip)
            scaler.step(opt)
            scaler.update()
            global_step += 1
            losses.append(ddp.mean_all(float(loss.detach())))  # over processes, if several
            elapsed = time.perf_counter() - t_start
            rate = elapsed / global_step
            remaining = total_steps - global_step
            if settings.max_minutes:
                remaining = min(remaining, max(0.0, 60 * settings.max_minutes - elapsed) / rate)
            emit(
                TrainingProgress(
                    "train", epoch, settings.epochs, step, steps, train_loss=float(np.mean(losses)),
                    best_val_mae=best if best < math.inf else None, elapsed_s=elapsed,
                    eta_s=remaining * rate, history=history,
                )
            )  # fmt: skip
        val_mae = evaluate(net, val_ids, batch, 2 * bs, device, use_amp, amp_dtype) * y_std
        # Without validation entries (a tiny selection) the latest weights are kept.
        improved = val_mae < best or not val_ids
        if improved:
            best, bad_epochs = val_mae, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            bad_epochs += 1
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)) if losses else None,
                "val_mae": val_mae,
                "elapsed_s": time.perf_counter() - t_start,
                "samples_seen": samples_seen,
                "observed_seen": observed_seen,
            }
        )
        emit(
            TrainingProgress(
                "validate", epoch, settings.epochs, steps, steps,
                train_loss=history[-1]["train_loss"], val_mae=val_mae, best_val_mae=best,
                elapsed_s=time.perf_counter() - t_start, history=history,
            )
        )  # fmt: skip
        out_of_time = settings.max_minutes and (
            time.perf_counter() - t_start > 60 * settings.max_minutes
        )
        if world > 1:
            out_of_time = bool(ddp.from_rank0([bool(out_of_time)])[0])
        if cancelled or bad_epochs >= settings.patience or out_of_time:
            break
    # The first epoch always ends in a validation (or keeps the weights when there is none).
    assert best_state is not None
    net.load_state_dict(best_state)
    emit(
        TrainingProgress(
            "done", len(history), settings.epochs, steps, steps, val_mae=best, best_val_mae=best,
            elapsed_s=time.perf_counter() - t_start, eta_s=0.0, history=history,
        )
    )  # fmt: skip
    return history, cancelled


def hidden_error(
    pred: torch.Tensor, y: torch.Tensor, hidden: torch.Tensor, scale: float | None
) -> torch.Tensor:
    """Mean absolute error on the ``hidden`` entries; with ``scale`` (several processes: their
    number over the global batch's count of hidden entries) the sum times ``scale``, so that
    DistributedDataParallel's mean of the gradients is that of the global batch's mean."""
    err = (pred.float() - y).abs()[hidden]
    return err.mean() if scale is None else err.sum() * scale


@torch.no_grad()
def evaluate(net, ids, batch, bs, device, use_amp, amp_dtype) -> float:
    """Mean absolute error (standardised units) on the validation entries of ``ids`` (NaN if
    none); with several processes, each scores its shard and the sums are added up."""
    net.eval()
    total, count = 0.0, 0
    ids = ids[ddp.shard(len(ids))]
    for k in range(0, len(ids), bs):
        y, u, visible, hidden = batch(ids[k : k + bs], training=False)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            pred, _ = net(y, visible, u if u.shape[-1] else None)
        err = (pred.float() - y).abs()[hidden]
        total += float(err.sum())
        count += int(err.numel())
    total, count = ddp.sum_all([total, count]) if ddp.is_distributed() else (total, count)
    return total / count if count else math.nan
