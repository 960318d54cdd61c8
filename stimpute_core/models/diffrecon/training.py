"""Self-supervised training of DiffRecon's two denoisers (CSDI's recipe) and their samplers.

Per training sample a share (drawn from ``mask_fractions``) of the visible observations is
hidden as the target, as whole days or single entries (``mask_kind`` three times in four, the
other kind otherwise); the rest conditions the denoiser, which predicts the clean target from
its noised version (MSE on the hidden entries only; see :mod:`.core` for why not the noise). Stage two keeps the validation entries out of every
input and scores, after each epoch, the denoising loss at the validation entries (fixed noise,
fixed steps): the best weights are kept (early stopping with ``patience``). Adam, cosine
learning rate, gradient clipping; ``max_minutes`` bounds the wall time of both stages.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ...masks import draw_days, draw_points
from ..windows import window_starts
from .core import Denoiser, alpha_bars, ddim_sample
from .data import coarse_tokens, fine_context, fine_tokens, slab

#: Days either side of a window whose observations give its point tokens.
EXTEND = 30


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run with ``n`` torch threads (None: as is), restoring the caller's number afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Schedule:
    """How to train and sample (a profile's values, overridden by the imputer's settings)."""

    epochs: int
    steps_per_epoch: int
    batch_size: int
    window: int
    crop: int
    coarse_steps: int
    coarse_window: int = 64
    lr: float = 1e-3
    patience: int = 8
    max_minutes: float | None = None
    mask_kind: str = "time_slice"
    mask_fractions: tuple[float, ...] = (0.2, 0.5, 0.8)
    val_fraction: float = 0.1
    val_crops: int = 8
    sample_batch: int = 8

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mask_fractions"] = list(self.mask_fractions)
        return d


def _hide(visible: np.ndarray, s: Schedule, rng: np.random.Generator) -> np.ndarray:
    kinds = ("time_slice", "point")
    kind = s.mask_kind if rng.random() < 0.75 else kinds[1 - kinds.index(s.mask_kind)]
    frac = float(rng.choice(s.mask_fractions))
    draw = draw_days if kind == "time_slice" else draw_points
    return draw(visible, frac, rng, at_least_one=True)


def _lr(opt: torch.optim.Optimizer, progress: float, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = 0.1 * lr + 0.45 * lr * (1 + math.cos(math.pi * min(progress, 1.0)))


def _diffuse(net: Denoiser, x0, visible, cond, target, gen: torch.Generator, t=None):
    """MSE of the predicted clean target on ``target`` entries for steps ``t`` (random when
    None)."""
    abar = alpha_bars(net.cfg).to(x0.device)
    if t is None:
        t = torch.randint(0, net.cfg.diffusion_steps, (x0.shape[0],), generator=gen)
    eps = torch.randn(x0.shape, generator=gen).to(x0.device)
    a = abar[t.to(x0.device)].view(-1, *([1] * (x0.dim() - 1)))
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    pred = net(x_t, x0, visible, cond, t.to(x0.device))
    w = target.float()
    return (((pred - x0) ** 2) * w).sum() / w.sum().clamp(min=1.0)


# -- stage one: the coarse series -------------------------------------------------------------


def _coarse_crop(series, context, s: Schedule, rng):
    g, n = series.shape
    length = min(s.coarse_window, n)
    for _ in range(50):
        k, t0 = int(rng.integers(g)), int(rng.integers(0, n - length + 1))
        seen = np.isfinite(series[k, t0 : t0 + length])
        if seen.any():
            break
    target = _hide(seen, s, rng)
    a, b = slab(t0, length, n, EXTEND)
    part = series[k, a:b].copy()
    part[t0 - a : t0 - a + length][target] = np.nan
    tokens = coarse_tokens(part)[t0 - a : t0 - a + length]
    x0 = np.nan_to_num(series[k, t0 : t0 + length])
    return x0, seen & ~target, target, context[k, t0 : t0 + length], tokens


def train_coarse(net: Denoiser, series, context, s: Schedule, seed: int, device, deadline):
    """Train stage one on the standardised coarse series ``series`` (G, T; NaN = no value);
    on one thread (its operations are too small to share)."""
    with torch_threads(1):
        return _train_coarse(net, series, context, s, seed, device, deadline)


def _train_coarse(net: Denoiser, series, context, s: Schedule, seed: int, device, deadline):
    rng = np.random.default_rng(seed + 101)
    gen = torch.Generator().manual_seed(seed + 102)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    losses = []
    for step in range(s.coarse_steps):
        if time.monotonic() > deadline:
            break
        parts = [_coarse_crop(series, context, s, rng) for _ in range(max(s.batch_size, 8))]
        x0, vis, tgt, ctx, tok = (
            torch.as_tensor(np.stack(p)).to(device) for p in zip(*parts, strict=True)
        )
        _lr(opt, step / max(s.coarse_steps, 1), s.lr)
        loss = _diffuse(net, x0.float(), vis.bool(), net.condition(ctx, tok), tgt.bool(), gen)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    net.cpu().eval()
    return {"steps": len(losses), "loss": float(np.mean(losses[-20:])) if losses else None}


@torch.no_grad()
def sample_coarse(net: Denoiser, series, context, n_samples, steps, seed, device) -> np.ndarray:
    """(S, G, T) samples of the standardised coarse series; observed days kept."""
    with torch_threads(1):
        return _sample_coarse(net, series, context, n_samples, steps, seed, device)


def _sample_coarse(net: Denoiser, series, context, n_samples, steps, seed, device):
    net.to(device).eval()
    g, n = series.shape
    values = torch.as_tensor(np.nan_to_num(series), dtype=torch.float32).repeat(n_samples, 1)
    visible = torch.as_tensor(np.isfinite(series)).repeat(n_samples, 1)
    tok = torch.as_tensor(coarse_tokens(series)).repeat(n_samples, 1, 1, 1)
    ctx = torch.as_tensor(context).repeat(n_samples, 1, 1)
    cond = net.condition(ctx.to(device), tok.to(device))
    gen = torch.Generator().manual_seed(seed + 103)
    out = ddim_sample(net, values.to(device), visible.to(device), cond, steps, gen)
    net.cpu()
    return out.cpu().numpy().reshape(n_samples, g, n)


# -- stage two: the fine field ----------------------------------------------------------------


@dataclass
class FineInputs:
    """Everything stage two is conditioned on besides the fine observations, for one period:
    covariates ``u`` (T, H, W, D), the coarse median ``c_med`` and its departures per coarse
    sample ``c_dep`` (S, T, H, W) in anomaly units, where the coarse was observed, the days."""

    u: np.ndarray
    c_med: np.ndarray
    c_dep: np.ndarray
    c_seen: np.ndarray
    times: np.ndarray

    def context(self, k, t0, t1, r0=0, r1=None, c0=0, c1=None) -> np.ndarray:
        """(len(k), t1 - t0, h, w, n) conditioning of coarse samples ``k`` on a crop."""
        sel = (slice(t0, t1), slice(r0, r1), slice(c0, c1))
        return fine_context(self.u[sel], self.c_med[sel], self.c_dep[(k, *sel)],
                            self.c_seen[sel], self.times[t0:t1])  # fmt: skip


def _fine_crop(a, inputs: FineInputs, s: Schedule, rng, hide=None, values=None):
    """One training crop: clean target values, visible, target (entries hidden now, or the
    validation entries ``hide`` with their anomalies ``values``), context and tokens."""
    n, h, w = a.shape
    length, ch, cw = min(s.window, n), min(s.crop, h), min(s.crop, w)
    for _ in range(50):
        t0 = int(rng.integers(0, n - length + 1))
        r0, c0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        win = (slice(t0, t0 + length), slice(r0, r0 + ch), slice(c0, c0 + cw))
        seen = np.isfinite(a[win])
        if seen.any() and (hide is None or hide[win].any()):
            break
    target = _hide(seen, s, rng) if hide is None else hide[win]
    lo, hi = slab(t0, length, n, EXTEND)
    part = a[lo:hi].copy()
    part[t0 - lo : t0 - lo + length, r0 : r0 + ch, c0 : c0 + cw][target] = np.nan
    tokens = fine_tokens(part)[t0 - lo : t0 - lo + length, r0 : r0 + ch, c0 : c0 + cw]
    k = int(rng.integers(inputs.c_dep.shape[0]))
    ctx = inputs.context([k], t0, t0 + length, r0, r0 + ch, c0, c0 + cw)[0]
    x0 = np.nan_to_num(a[win] if values is None else np.where(target, values[win], 0.0))
    return x0, seen & ~target, target, ctx, tokens


def _tensors(parts, device):
    return [torch.as_tensor(np.stack(p)).to(device) for p in zip(*parts, strict=True)]


def train_fine(net, a, val_mask, val_values, inputs, s: Schedule, seed, device, deadline):
    """Train stage two on the visible anomalies ``a`` (T, H, W; NaN where unobserved or held
    for validation); ``val_mask`` marks the validation entries, ``val_values`` holds their
    anomalies (only the validation loss reads them, never an input). Returns the history; the
    best weights are loaded into ``net``."""
    rng = np.random.default_rng(seed + 201)
    gen = torch.Generator().manual_seed(seed + 202)
    vrng = np.random.default_rng(seed + 203)
    # Fixed validation crops: the visible values condition them, the validation entries score.
    val = [_fine_crop(a, inputs, s, vrng, val_mask, val_values) for _ in range(s.val_crops)]
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    total = s.epochs * s.steps_per_epoch
    history, best, best_state, bad, step = [], math.inf, None, 0, 0
    start = time.monotonic()
    for epoch in range(1, s.epochs + 1):
        losses = []
        for _ in range(s.steps_per_epoch):
            if time.monotonic() > deadline:
                break
            x0, vis, tgt, ctx, tok = _tensors(
                [_fine_crop(a, inputs, s, rng) for _ in range(s.batch_size)], device
            )
            progress = step / total
            if math.isfinite(deadline):
                progress = max(progress, (time.monotonic() - start) / (deadline - start))
            _lr(opt, progress, s.lr)
            loss = _diffuse(net, x0.float(), vis.bool(), net.condition(ctx, tok), tgt.bool(), gen)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        if not losses:
            break
        score = _validate(net, val, device, seed)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": score})
        if score < best:
            best, best_state, bad = score, copy.deepcopy(net.state_dict()), 0
        else:
            bad += 1
            if bad >= s.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.cpu().eval()
    return history


@torch.no_grad()
def _validate(net, val, device, seed) -> float:
    net.eval()
    gen = torch.Generator().manual_seed(seed + 204)
    scores = []
    for x0, vis, tgt, ctx, tok in val:
        x0t, vist, tgtt, ctxt, tokt = _tensors([(x0, vis, tgt, ctx, tok)] * 3, device)
        t = torch.tensor([5, 20, 40]) % net.cfg.diffusion_steps
        cond = net.condition(ctxt, tokt)
        scores.append(float(_diffuse(net, x0t.float(), vist.bool(), cond, tgtt.bool(), gen, t)))
    net.train()
    return float(np.mean(scores)) if scores else math.inf


@torch.no_grad()
def sample_fine(net, a, inputs: FineInputs, n_samples, steps, seed, device, s: Schedule,
                days=None) -> np.ndarray:  # fmt: skip
    """(S, T, H, W) anomaly samples conditioned on the visible anomalies ``a`` (NaN where not
    visible), in windows of ``s.window`` days over the whole grid; visible entries kept. With
    ``days`` (bool, T) only windows holding one of those days are sampled (NaN elsewhere)."""
    net.to(device).eval()
    n, h, w = a.shape
    length = min(s.window, n)
    out = np.full((n_samples, n, h, w), np.nan, np.float32)
    done = np.zeros(n, bool)
    for wi, t0 in enumerate(window_starts(n, length, length)):
        todo = np.arange(t0, t0 + length)[~done[t0 : t0 + length]]
        done[todo] = True
        if days is not None and not days[todo].any():
            continue
        lo, hi = slab(t0, length, n, EXTEND)
        tok = torch.as_tensor(fine_tokens(a[lo:hi])[t0 - lo : t0 - lo + length]).to(device)
        win = a[t0 : t0 + length]
        gen = torch.Generator().manual_seed(seed * 7919 + 301 + wi)
        for k0 in range(0, n_samples, s.sample_batch):
            ks = list(range(k0, min(n_samples, k0 + s.sample_batch)))
            ctx = torch.as_tensor(inputs.context([k % inputs.c_dep.shape[0] for k in ks], t0,
                                                 t0 + length)).to(device)  # fmt: skip
            cond = net.condition(ctx, tok.expand(len(ks), *tok.shape))
            values = torch.as_tensor(np.nan_to_num(win), dtype=torch.float32).to(device)
            visible = torch.as_tensor(np.isfinite(win)).to(device)
            x = ddim_sample(net, values.expand(len(ks), *values.shape).contiguous(),
                            visible.expand(len(ks), *visible.shape), cond, steps, gen)  # fmt: skip
            out[ks[0] : ks[-1] + 1][:, todo] = x.cpu().numpy()[:, todo - t0]
    net.cpu()
    return out
