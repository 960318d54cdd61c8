"""Sparse vector quantization (SVQ, arXiv 2312.03406) as a residual bottleneck.

The authors' module (``SVQ`` in their OpenSTL fork): a two-layer MLP maps each latent vector
to weights over a codebook of ``N`` codes, and the output is the weighted sum of the codes, a
soft stand-in for a sparse regression on the codebook (no softmax, no top-k, no extra loss).
The codebook is Kaiming-initialised and frozen by default (learnable as an option).

Here it is a per-token option of the ST-Transformer, ``h + alpha * svq(h)``, with ``alpha`` a
learnt scalar that starts at 0: an untrained bottleneck changes nothing, so the network with
SVQ starts where the network without it starts, and the ablation measures what SVQ adds.
Placement (:class:`~.core.STTransformerConfig` ``svq_placement``): ``"pre"`` on the input
encoder's tokens (the authors' default, on the encoder latent before the translator) or
``"post"`` on the last layer's output, before the readout.

Memory is the catch: the weights are tokens x ``N`` numbers. A 16 x 72 x 144 batch is 166k
tokens, so ``N = 10,000`` is 6.6 GB in float32 for the forward pass alone (and as much again
for its gradient); ``N = 512`` is 0.34 GB. The default ``N`` is 512 for the 2-core machine;
:func:`step_memory` measures a step (``benchmarks/svq_ablation.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

PLACEMENTS = ("pre", "post")


class SparseVQ(nn.Module):
    """``h + alpha * (MLP(h) @ codebook)``: weights over ``codes`` codes of width ``dim``."""

    def __init__(self, dim: int, codes: int = 512, hidden: int = 128, frozen: bool = True):
        super().__init__()
        self.weights = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, codes))
        codebook = torch.empty(codes, dim)
        nn.init.kaiming_uniform_(codebook, a=math.sqrt(5))
        if frozen:  # saved with the weights (the codes must be the same when loaded)
            self.register_buffer("codebook", codebook)
        else:
            self.codebook = nn.Parameter(codebook)
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (..., dim) tokens; the same shape back."""
        return h + self.alpha * (self.weights(h) @ self.codebook.to(h.dtype))


def step_memory(tokens: int, dim: int, codes: int, hidden: int = 128) -> int:
    """Bytes of float32 activations one forward pass of :class:`SparseVQ` keeps for its
    backward pass over ``tokens`` tokens: the MLP's hidden layer and the code weights (the
    largest part), and its output."""
    return 4 * tokens * (hidden + codes + dim)


__all__ = ["PLACEMENTS", "SparseVQ", "step_memory"]
