"""DiffRecon's networks and diffusion: a point encoder (ST-PointFormer reading), a temporal
encoder (T-PatternNet reading), the two denoisers and the DDPM schedule with a DDIM sampler.

Shapes: the fine denoiser works on (B, L, H, W) windows of the grid, channels last; the coarse
one on (B, T) series. Both predict the clean target ``x0`` (not CSDI's noise ``eps``: with the
few training steps of a CPU budget, an x0-model's estimate is a usable conditional mean at every
noise level, where an eps-model's x0 = (x - sqrt(1 - a) eps) / sqrt(a) blows up its errors).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import COARSE_TOKENS, FINE_TOKENS, TOKEN_DIM

#: Bounds of the sizes a configuration (and so a checkpoint) may hold.
SIZE_BOUNDS = {"hidden": (4, 256), "n_blocks": (1, 8), "n_heads": (1, 8), "n_context": (1, 512),
               "diffusion_steps": (2, 1000)}  # fmt: skip


@dataclass(frozen=True)
class NetConfig:
    """Sizes of one stage's denoiser (``stage``: ``"coarse"`` or ``"fine"``)."""

    stage: str
    n_context: int
    hidden: int = 32
    n_blocks: int = 2
    n_heads: int = 2
    diffusion_steps: int = 50
    beta_start: float = 1e-4
    beta_end: float = 0.5

    def __post_init__(self) -> None:
        if self.stage not in ("coarse", "fine"):
            raise ValueError(f"stage={self.stage!r}: expected 'coarse' or 'fine'")
        for key, (low, high) in SIZE_BOUNDS.items():
            value = getattr(self, key)
            if type(value) is not int or not low <= value <= high:
                raise ValueError(f"{key}={value!r}: expected an integer from {low} to {high}")
        if self.hidden % self.n_heads:
            raise ValueError(f"hidden={self.hidden} must be a multiple of n_heads={self.n_heads}")
        ok = all(isinstance(b, float) and 0 < b < 1 for b in (self.beta_start, self.beta_end))
        if not ok or self.beta_start >= self.beta_end:
            raise ValueError(f"beta_start={self.beta_start!r}, beta_end={self.beta_end!r}: "
                             "expected 0 < beta_start < beta_end < 1")  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object, where: str) -> NetConfig:
        keys = sorted(cls.__dataclass_fields__)
        if not isinstance(d, dict) or sorted(d) != keys:
            raise ValueError(f"{where}: expected an object with the keys {keys}")
        try:
            return cls(**d)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


def alpha_bars(cfg: NetConfig) -> torch.Tensor:
    """Cumulative signal shares of CSDI's quadratic schedule (``diffusion_steps`` values)."""
    betas = torch.linspace(cfg.beta_start**0.5, cfg.beta_end**0.5, cfg.diffusion_steps) ** 2
    return torch.cumprod(1.0 - betas.double(), 0).float()


def step_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of the diffusion steps ``t`` (B,)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angle = t.float()[:, None] * freq[None]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


class PointEncoder(nn.Module):
    """ST-PointFormer reading: each point token (value, distance, exists) becomes an MLP feature
    with a learned type embedding; a query from the entry's context attends over its tokens and
    a learned null token (so an entry with no observation near it gets a defined feature)."""

    def __init__(self, n_tokens: int, hidden: int):
        super().__init__()
        self.token = nn.Sequential(nn.Linear(TOKEN_DIM, hidden), nn.GELU(),
                                   nn.Linear(hidden, hidden))  # fmt: skip
        self.kind = nn.Parameter(torch.randn(n_tokens, hidden) * 0.02)
        self.null = nn.Parameter(torch.zeros(1, hidden))
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)

    def forward(self, tokens: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``tokens`` (..., K, TOKEN_DIM), ``context`` (..., C) -> (..., C)."""
        v = self.token(tokens) + self.kind
        v = torch.cat([v, self.null.expand(*v.shape[:-2], 1, v.shape[-1])], dim=-2)
        exists = torch.cat([tokens[..., 2] > 0.5, torch.ones_like(tokens[..., :1, 2]) > 0], -1)
        score = (self.key(v) * self.query(context)[..., None, :]).sum(-1) / math.sqrt(v.shape[-1])
        weight = torch.softmax(score.masked_fill(~exists, -1e4), dim=-1)
        return (weight[..., None] * v).sum(-2)


class TemporalEncoder(nn.Module):
    """T-PatternNet reading: a per-cell stack of dilated temporal convolutions (1, 2, 4 days)
    over the covariates, the completed coarse series and the period features."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.convs = nn.ModuleList(
            nn.Conv1d(hidden, hidden, 3, padding=d, dilation=d) for d in (1, 2, 4)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, *cells, n_in) -> (B, L, *cells, C)."""
        h = self.inp(x)
        b, length = h.shape[:2]
        seq = h.movedim(1, -2).reshape(-1, length, h.shape[-1]).transpose(1, 2)
        for conv in self.convs:
            seq = seq + F.gelu(conv(seq))
        out = seq.transpose(1, 2).reshape(b, *h.shape[2:-1], length, h.shape[-1])
        return out.movedim(-2, 1)


class FineBlock(nn.Module):
    """One residual layer: temporal mixing per cell, then a gated depthwise-separable spatial
    convolution per day with the conditioning added (CSDI's layer with convolutions for its
    two transformers)."""

    def __init__(self, hidden: int, heads: int, dilation: int):
        super().__init__()
        self.heads = heads
        self.step = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        # Temporal mixing: a depthwise dilated convolution (5 taps, 1 or 3 days apart) per
        # head group, then a pointwise map (attention over the window cost most of the time).
        self.temporal = nn.Conv1d(hidden, hidden, 5, padding=2 * (2 * dilation - 1),
                                  dilation=2 * dilation - 1, groups=hidden)  # fmt: skip
        self.proj = nn.Linear(hidden, hidden)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, padding=dilation, dilation=dilation,
                                   groups=hidden)  # fmt: skip
        self.pointwise = nn.Linear(hidden, 2 * hidden)
        self.cond = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, 2 * hidden)

    def forward(self, h: torch.Tensor, cond: torch.Tensor, emb: torch.Tensor):
        """``cond`` is this block's projection of the conditioning (``self.cond``), computed
        once per window."""
        b, length, ny, nx, c = h.shape
        y = h + self.step(emb)[:, None, None, None, :]
        seq = self.norm(y).permute(0, 2, 3, 4, 1).reshape(b * ny * nx, c, length)
        mixed = F.gelu(self.temporal(seq)).view(b, ny, nx, c, length).permute(0, 4, 1, 2, 3)
        y = y + self.proj(mixed)
        z = self.depthwise(y.reshape(b * length, ny, nx, c).permute(0, 3, 1, 2))
        z = self.pointwise(z.permute(0, 2, 3, 1).reshape(b, length, ny, nx, c)) + cond
        gate = torch.tanh(z[..., :c]) * torch.sigmoid(z[..., c:])
        res, skip = self.out(gate).chunk(2, dim=-1)
        return (h + res) / math.sqrt(2.0), skip


class CoarseBlock(nn.Module):
    """One residual layer of the coarse (1-D) denoiser: a gated dilated temporal convolution."""

    def __init__(self, hidden: int, dilation: int):
        super().__init__()
        self.step = nn.Linear(hidden, hidden)
        self.conv = nn.Conv1d(hidden, 2 * hidden, 3, padding=dilation, dilation=dilation)
        self.cond = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, 2 * hidden)

    def forward(self, h: torch.Tensor, cond: torch.Tensor, emb: torch.Tensor):
        c = h.shape[-1]
        y = h + self.step(emb)[:, None, :]
        z = self.conv(y.transpose(1, 2)).transpose(1, 2) + cond
        gate = torch.tanh(z[..., :c]) * torch.sigmoid(z[..., c:])
        res, skip = self.out(gate).chunk(2, dim=-1)
        return (h + res) / math.sqrt(2.0), skip


class Denoiser(nn.Module):
    """``x0`` from the noisy target, the visible values and their mask, the conditioning
    (context through the temporal encoder or a linear map, point tokens through the point
    encoder) and the diffusion step."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg.hidden
        self.inp = nn.Linear(3, c)
        self.emb = nn.Sequential(nn.Linear(64, c), nn.SiLU(), nn.Linear(c, c))
        fine = cfg.stage == "fine"
        self.context = TemporalEncoder(cfg.n_context, c) if fine else nn.Linear(cfg.n_context, c)
        self.points = PointEncoder(FINE_TOKENS if fine else COARSE_TOKENS, c)
        self.blocks = nn.ModuleList(
            FineBlock(c, cfg.n_heads, 1 + k % 2) if fine else CoarseBlock(c, 2 ** (k % 4))
            for k in range(cfg.n_blocks)
        )
        self.head = nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def condition(self, context: torch.Tensor, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Each block's projection of the conditioning features (computed once per window,
        reused at every diffusion step)."""
        ctx = self.context(context)
        features = ctx + self.points(tokens, ctx)
        return [block.cond(features) for block in self.blocks]

    def forward(self, x_t, visible_values, visible, cond, t) -> torch.Tensor:
        """``x_t``, ``visible_values``, ``visible``: (B, *shape); ``cond`` from
        :meth:`condition`; ``t`` (B,) steps. Returns the predicted clean target (B, *shape)."""
        vis = visible.float()
        h = self.inp(torch.stack([x_t * (1 - vis), visible_values * vis, vis], dim=-1))
        emb = self.emb(step_embedding(t, 64))
        skips = 0.0
        for block, c in zip(self.blocks, cond, strict=True):
            h, skip = block(h, c, emb)
            skips = skips + skip
        return self.head(skips / math.sqrt(len(self.blocks))).squeeze(-1)


@torch.no_grad()
def ddim_sample(
    net: Denoiser,
    values: torch.Tensor,
    visible: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from noise drawn with ``generator`` to x0, in ``steps``
    evenly spaced steps of the training schedule; visible entries are returned as given."""
    abar = alpha_bars(net.cfg).to(values.device)
    n = net.cfg.diffusion_steps
    times = torch.linspace(n - 1, 0, min(steps, n)).round().long().tolist()
    noise = torch.randn(values.shape, generator=generator, device="cpu").to(values.device)
    x = noise
    x0 = torch.zeros_like(values)
    for i, t in enumerate(times):
        a = abar[t]
        tt = torch.full((values.shape[0],), t, device=values.device, dtype=torch.long)
        x0 = net(x, values, visible, cond, tt).clamp(-5.0, 5.0)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        if i + 1 < len(times):
            a_next = abar[times[i + 1]]
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
    return torch.where(visible, values, x0)
