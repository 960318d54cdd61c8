"""The Spatiotemporal Transformer network (Yao, Huang and Zhu 2023) as a plain ``torch.nn.Module``.

A sample is a window of ``T`` days over a square patch of ``P x P`` cells. Each token (day, cell)
is embedded as the sum of

- the observed value through an MLP where it is visible, a learnable mask token where it is
  missing or hidden (:class:`InputEncoder`);
- the covariates (time-varying values with their missing flags, static fields, land-cover one-hot)
  through their own MLP;
- a sinusoidal encoding of the position in the window;
- a spatial embedding of the position in the patch.

Then ``n_layers`` spatiotemporal layers: temporal self-attention over the window for each cell,
spatial attention at each day, an MLP; each with a residual connection and layer norm. Spatial
attention is ``"swin"`` (two shifted-window blocks with relative position bias, the paper's
default), ``"full"`` (global over the patch) or ``"none"``.

Where the paper and the authors' code differ, the paper is the default and the code is an option:

=====================  ==============================  ==================================
setting                paper (default)                 authors' code (option)
=====================  ==============================  ==================================
``norm``               ``"post"``: LN(x + f(x))        ``"pre"``: x + f(LN(x)), outer LN
``readout``            ``"concat"``: MLP of all layers ``"deep"``: per-layer readouts,
                                                       loss on each (deep supervision)
``spatial_embedding``  ``"mlp"``: MLP of (row, col)    ``"table"``: embedding per cell index
=====================  ==============================  ==================================

The mask token is learnable in both (the paper calls it a constant vector without saying how it is
set; a learned constant is the usual reading).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .svq import PLACEMENTS, SparseVQ

SPATIAL_KINDS = ("swin", "full", "none")
#: Sizes a configuration may ask for: room for the ``paper`` profile and well beyond it, but a
#: corrupt checkpoint cannot ask for gigabytes before anything is checked. A window of at most a
#: year of days keeps temporal attention within memory (the paper's is 72 days).
SIZE_BOUNDS = {
    "n_covariates": (0, 4096), "hidden": (1, 1024), "n_layers": (1, 32), "n_heads": (1, 32),
    "patch": (1, 64), "window": (1, 366), "swin_window": (1, 64),
    "svq_codes": (1, 16384), "svq_hidden": (1, 4096),
}  # fmt: skip
#: Neighbourhood widths (cells) of the day pooling; 0 is the whole patch.
POOL_SIGMAS = (2.0, 6.0, 0.0)


@dataclass(frozen=True)
class STTransformerConfig:
    """Architecture of the network (everything needed to rebuild it from a checkpoint)."""

    n_covariates: int = 0
    hidden: int = 64
    n_layers: int = 4
    n_heads: int = 1
    patch: int = 12
    window: int = 72
    spatial: str = "swin"
    temporal: bool = True
    swin_window: int = 4
    swin_shifts: tuple[int, ...] = (0, 2)
    norm: str = "post"
    readout: str = "concat"
    spatial_embedding: str = "mlp"
    dropout: float = 0.0
    #: The output is a correction to a prior estimate: the readout starts at zero, so an
    #: untrained network returns the prior unchanged.
    residual: bool = False
    #: Each token also gets the day's visible values pooled around it: Gaussian-weighted means
    #: over neighbourhoods of 2 and 6 cells and the whole patch, with the weight each had
    #: (the evidence of the day in one step: windowed attention sees 4 x 4 cells). Computed
    #: from visible tokens only; the pooled means also reach the readout directly.
    day_pool: bool = False
    #: ``"svq"``: a sparse vector quantization bottleneck (:mod:`.svq`) at ``svq_placement``
    #: (``"pre"``: the encoder's tokens, ``"post"``: the last layer's), ``svq_codes`` codes,
    #: an MLP of ``svq_hidden``, the codebook frozen unless ``svq_frozen`` is False.
    bottleneck: str = "none"
    svq_placement: str = "pre"
    svq_codes: int = 512
    svq_hidden: int = 128
    svq_frozen: bool = True

    def __post_init__(self) -> None:
        for name, (low, high) in SIZE_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name}={value!r}: expected an integer from {low} to {high}")
        for name in ("temporal", "residual", "day_pool", "svq_frozen"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected True or False")
        drop = self.dropout
        if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop < 1:
            raise ValueError(f"dropout={drop!r}: expected a number from 0 to below 1")
        shifts = self.swin_shifts
        if not (
            isinstance(shifts, tuple)
            and 1 <= len(shifts) <= 4
            and all(type(s) is int and 0 <= s < self.swin_window for s in shifts)
        ):
            raise ValueError(
                f"swin_shifts={shifts!r}: expected 1 to 4 shifts from 0 to {self.swin_window - 1}"
            )
        if self.spatial not in SPATIAL_KINDS:
            raise ValueError(
                f"spatial={self.spatial!r}: expected one of {', '.join(SPATIAL_KINDS)}"
            )
        if self.bottleneck not in ("none", "svq"):
            raise ValueError(f"bottleneck={self.bottleneck!r}: expected 'none' or 'svq'")
        if self.svq_placement not in PLACEMENTS:
            raise ValueError(f"svq_placement={self.svq_placement!r}: expected 'pre' or 'post'")
        if self.norm not in ("post", "pre"):
            raise ValueError(
                f"norm={self.norm!r}: expected 'post' (paper) or 'pre' (authors' code)"
            )
        if self.readout not in ("concat", "deep"):
            raise ValueError(f"readout={self.readout!r}: expected 'concat' or 'deep'")
        if self.spatial_embedding not in ("mlp", "table"):
            raise ValueError(
                f"spatial_embedding={self.spatial_embedding!r}: expected 'mlp' or 'table'"
            )
        if self.spatial == "swin" and self.patch % self.swin_window:
            raise ValueError(
                f"patch {self.patch} is not a multiple of the Swin window {self.swin_window}"
            )
        if self.hidden % self.n_heads:
            raise ValueError(f"hidden {self.hidden} is not divisible by n_heads {self.n_heads}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["swin_shifts"] = list(self.swin_shifts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> STTransformerConfig:
        """The configuration saved by :meth:`to_dict`, every field checked; a key it lacks
        takes its default (a checkpoint saved before the field existed)."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown}: expected some of {list(cls.__dataclass_fields__)}"
            )
        d = dict(d)
        shifts = d.get("swin_shifts", (0, 2))
        d["swin_shifts"] = tuple(shifts) if isinstance(shifts, list | tuple) else shifts
        return cls(**d)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Linear-ReLU-Linear, the paper's MLP."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Linear(d_hidden, d_out))


def sinusoidal(length: int, dim: int) -> torch.Tensor:
    """Vaswani et al.'s sinusoidal encoding (base 10000), shape (length, dim)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    i = torch.arange(0, dim, 2, dtype=torch.float32)
    angle = pos / torch.pow(10000.0, i / dim)
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe


class Attention(nn.Module):
    """Multi-head self-attention with an optional additive bias; can keep its weights."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.capture = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.capture:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
            if bias is not None:
                scores = scores + bias
            attn = scores.softmax(dim=-1)
            self.weights = attn.detach()
            out = attn @ v
        else:
            drop = self.dropout if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=drop)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class WindowAttention(nn.Module):
    """(Shifted-)window attention over a P x P grid with Swin's relative position bias.

    The cyclic shift and the window partition are one precomputed gather of the tokens (and its
    inverse afterwards), which is the same arithmetic as Swin's roll-and-reshape with fewer copies.
    """

    def __init__(self, dim: int, heads: int, patch: int, window: int, shift: int, dropout: float):
        super().__init__()
        self.patch, self.window, self.shift, self.heads = patch, window, shift, heads
        self.attn = Attention(dim, heads, dropout)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        w = window
        wr, wc = torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")
        flat = torch.stack([wr.flatten(), wc.flatten()])
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (w - 1)
        self.register_buffer("rel_index", rel[..., 0] * (2 * w - 1) + rel[..., 1], persistent=False)
        # order[j] = row-major index of the token at window-ordered position j after the shift.
        rows, cols = torch.meshgrid(torch.arange(patch), torch.arange(patch), indexing="ij")
        src = ((rows + shift) % patch) * patch + (cols + shift) % patch  # token at shifted (r, c)
        order = src.view(patch // w, w, patch // w, w).permute(0, 2, 1, 3).reshape(-1)
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)
        self.register_buffer("shift_mask", self._shift_mask(), persistent=False)

    def _shift_mask(self) -> torch.Tensor | None:
        """Large negative bias between tokens that were not neighbours before the cyclic shift."""
        if self.shift == 0:
            return None
        p, w, s = self.patch, self.window, self.shift
        region = torch.zeros(p, p)
        label = 0
        for rs in (slice(0, p - w), slice(p - w, p - s), slice(p - s, p)):
            for cs in (slice(0, p - w), slice(p - w, p - s), slice(p - s, p)):
                region[rs, cs] = label
                label += 1
        win = region.view(p // w, w, p // w, w).permute(0, 2, 1, 3).reshape(-1, w * w)
        diff = win[:, :, None] != win[:, None, :]
        return torch.where(diff, torch.tensor(-100.0), torch.tensor(0.0))  # (nW, ww, ww)

    def window_of(self, cell: int) -> torch.Tensor:
        """Row-major indices of the cells sharing ``cell``'s (shifted) window."""
        pos = int(self.inverse[cell])
        ww = self.window * self.window
        start = pos // ww * ww
        return self.order[start : start + ww]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, P*P, C) tokens of one day's patch, row-major."""
        b, n, c = x.shape
        ww = self.window * self.window
        windows = x[:, self.order].reshape(-1, ww, c)  # (B * nW, ww, C)
        bias = self.bias_table[self.rel_index].permute(2, 0, 1)[None]  # (1, heads, ww, ww)
        if self.shift_mask is not None:
            n_win = self.shift_mask.shape[0]
            per_window = bias + self.shift_mask[:, None]  # (nW, heads, ww, ww)
            bias = per_window.expand(b, -1, -1, -1, -1).reshape(b * n_win, self.heads, ww, ww)
        out = self.attn(windows, bias).reshape(b, n, c)
        return out[:, self.inverse]


class Residual(nn.Module):
    """A sub-layer with its residual and layer norm, post-LN (paper) or pre-LN (code)."""

    def __init__(self, fn: nn.Module, dim: int, norm: str, dropout: float):
        super().__init__()
        self.fn, self.norm, self.ln = fn, norm, nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm == "post":
            return self.ln(x + self.drop(self.fn(x)))
        return x + self.drop(self.fn(self.ln(x)))


class STLayer(nn.Module):
    """Temporal attention per cell, then spatial attention per day, then an MLP."""

    def __init__(self, cfg: STTransformerConfig):
        super().__init__()
        c, h, d = cfg.hidden, cfg.n_heads, cfg.dropout
        self.cfg = cfg
        self.temporal = Residual(Attention(c, h, d), c, cfg.norm, d) if cfg.temporal else None
        if cfg.spatial == "swin":
            self.spatial = nn.ModuleList(
                Residual(WindowAttention(c, h, cfg.patch, cfg.swin_window, s, d), c, cfg.norm, d)
                for s in cfg.swin_shifts
            )
        elif cfg.spatial == "full":
            self.spatial = nn.ModuleList([Residual(Attention(c, h, d), c, cfg.norm, d)])
        else:
            self.spatial = nn.ModuleList()
        self.ff = Residual(mlp(c, c, c), c, cfg.norm, d)
        self.out_norm = nn.LayerNorm(c) if cfg.norm == "pre" else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, T, N, C)."""
        b, t, n, c = h.shape
        if self.temporal is not None:
            h = (
                self.temporal(h.transpose(1, 2).reshape(b * n, t, c))
                .view(b, n, t, c)
                .transpose(1, 2)
            )
        if len(self.spatial):
            z = h.reshape(b * t, n, c)
            for block in self.spatial:
                z = block(z)
            h = z.view(b, t, n, c)
        return self.out_norm(self.ff(h))


class InputEncoder(nn.Module):
    """Sum of value (or mask token), covariate, temporal and spatial embeddings."""

    def __init__(self, cfg: STTransformerConfig):
        super().__init__()
        c = cfg.hidden
        self.value = mlp(1, c, c)
        self.mask_token = nn.Parameter(torch.zeros(c))
        nn.init.normal_(self.mask_token, std=0.02)
        self.covariates = mlp(cfg.n_covariates, c, c) if cfg.n_covariates else None
        self.register_buffer("pe", sinusoidal(cfg.window, c), persistent=False)
        p = cfg.patch
        if cfg.spatial_embedding == "table":
            self.space = nn.Embedding(p * p, c)
            self.register_buffer("cell_index", torch.arange(p * p), persistent=False)
        else:
            rr, cc = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
            pos = torch.stack([rr.flatten(), cc.flatten()], dim=-1).float() / max(p - 1, 1)
            self.register_buffer("cell_pos", pos, persistent=False)
            self.space = mlp(2, c, c)
        self.spatial_embedding = cfg.spatial_embedding
        self.day = mlp(2 * len(POOL_SIGMAS), c, c) if cfg.day_pool else None
        if cfg.day_pool:
            rr, cc = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
            xy = torch.stack([rr.flatten(), cc.flatten()], dim=-1).float()
            d2 = ((xy[:, None] - xy[None]) ** 2).sum(-1)
            kernels = [
                torch.exp(-d2 / (2 * s**2)) if s else torch.ones_like(d2) for s in POOL_SIGMAS
            ]
            self.register_buffer("pool_kernels", torch.stack(kernels), persistent=False)

    def forward(
        self, y: torch.Tensor, visible: torch.Tensor, u: torch.Tensor | None
    ) -> torch.Tensor:
        """y, visible: (B, T, N); u: (B, T, N, D) or None. Returns (B, T, N, C)."""
        t = y.shape[1]
        m = visible.unsqueeze(-1).to(y.dtype)
        seen = torch.where(visible, y, 0.0)
        h = self.value(seen.unsqueeze(-1)) * m + self.mask_token * (1 - m)
        self.pooled = None
        if self.day is not None:
            vis = m.squeeze(-1)  # (B, T, N)
            # (K, N, N) kernels: weighted sums of visible values and of visibility per token.
            total = torch.einsum("knm,btm->btnk", self.pool_kernels, seen)
            weight = torch.einsum("knm,btm->btnk", self.pool_kernels, vis)
            mean = total / weight.clamp(min=1e-3)
            share = weight / self.pool_kernels.sum(-1).T  # (B, T, N, K) / (N, K)
            self.pooled = mean * (weight > 1e-3)
            h = h + self.day(torch.cat([self.pooled, share], dim=-1))
        if self.covariates is not None and u is not None:
            h = h + self.covariates(u)
        h = h + self.pe[:t, None, :]
        if self.spatial_embedding == "table":
            h = h + self.space(self.cell_index)
        else:
            h = h + self.space(self.cell_pos)
        return h


class STTransformer(nn.Module):
    """The whole network: encoder, layers, readout. Input values are standardised."""

    def __init__(self, cfg: STTransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = InputEncoder(cfg)
        self.layers = nn.ModuleList(STLayer(cfg) for _ in range(cfg.n_layers))
        c = cfg.hidden
        pooled = len(POOL_SIGMAS) if cfg.day_pool else 0
        if cfg.readout == "concat":
            self.readout = mlp(c * cfg.n_layers + pooled, c, 1)
            heads = [self.readout]
        else:
            self.readouts = nn.ModuleList(mlp(c, c, 1) for _ in range(cfg.n_layers))
            heads = list(self.readouts)
        self.svq = None
        if cfg.bottleneck == "svq":
            self.svq = SparseVQ(c, cfg.svq_codes, cfg.svq_hidden, cfg.svq_frozen)
        if cfg.residual:
            for head in heads:
                nn.init.zeros_(head[-1].weight)
                nn.init.zeros_(head[-1].bias)

    def forward(
        self, y: torch.Tensor, visible: torch.Tensor, u: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Prediction (B, T, N) and, for deep supervision, the per-layer predictions."""
        h = self.encoder(y, visible, u)
        pre, post = (self.svq, None) if self.cfg.svq_placement == "pre" else (None, self.svq)
        if pre is not None:
            h = pre(h)
        outs = []
        for layer in self.layers:
            h = layer(h)
            outs.append(h)
        if post is not None:
            outs[-1] = post(outs[-1])
        if self.cfg.readout == "concat":
            if self.encoder.pooled is not None:
                outs.append(self.encoder.pooled)
            return self.readout(torch.cat(outs, dim=-1)).squeeze(-1), []
        preds = [ro(o).squeeze(-1) for ro, o in zip(self.readouts, outs, strict=True)]
        return preds[-1], preds[:-1]

    def set_capture(self, on: bool) -> None:
        """Keep attention weights of every attention module on the next forward pass."""
        for module in self.modules():
            if isinstance(module, Attention):
                module.capture = on
                if not on:
                    module.weights = None
