"""Training on several processes: PyTorch's process group as started by ``torchrun``.

``torchrun --nproc_per_node N`` starts N copies of a command and gives each the environment
variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` joins them into one process group (``gloo`` on the CPU, ``nccl`` on CUDA).
Once it is joined, :func:`~.training.train_network` wraps the network in
``DistributedDataParallel``: every process draws the same shuffled global batches and the same
masks from the shared seed, trains on its :func:`shard` of each, the gradients are averaged,
and the validation error is summed over all processes (:func:`sum_all`), so every process takes
the same steps and keeps the same weights. Decisions that read a clock (the time budget, the
learning rate that follows it) and a cancel request are rank 0's (:func:`from_rank0`).

Without a process group (or with one process) every helper is a no-op and nothing changes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist

#: What ``torchrun`` sets in the environment of every process it starts.
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def is_distributed() -> bool:
    """Whether a process group of more than one process is joined."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes training together (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this process reports progress and writes results (rank 0, or no group)."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether the environment says this process is one of several started by ``torchrun``."""
    try:
        return int(os.environ.get("WORLD_SIZE") or 1) > 1
    except ValueError:  # not torchrun's
        return False


def init_from_env(device: str | None = None) -> int:
    """Join the process group described by torchrun's environment variables; return the world
    size. ``device`` (as for training) picks the backend: ``nccl`` for CUDA, else ``gloo``.

    ValueError, naming what is missing, when the variables are not set (not run by torchrun).
    """
    missing = [name for name in ENV_VARS if not os.environ.get(name)]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} not set: several processes are started by torchrun, "
            "e.g. `torchrun --nproc_per_node 2 -m stimpute_core.cli train --distributed ...`"
        )
    if dist.is_initialized():
        return dist.get_world_size()
    cuda = torch.device(device).type == "cuda" if device else torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://")
    return dist.get_world_size()


def close() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """``device`` for this process: a GPU without an index becomes this node's ``LOCAL_RANK``."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard(n: int) -> slice:
    """This process's contiguous part of ``n`` items (sizes differ by at most one)."""
    size, r = world_size(), rank()
    bounds = np.linspace(0, n, size + 1).round().astype(int) if n else np.zeros(size + 1, int)
    return slice(int(bounds[r]), int(bounds[r + 1]))


def sum_all(values: Sequence[float]) -> list[float]:
    """``values`` summed over all processes (float64; every process gets the same result)."""
    t = torch.tensor(list(values), dtype=torch.float64)
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def mean_all(value: float) -> float:
    """``value`` averaged over all processes (``value`` itself without a process group)."""
    return sum_all([value])[0] / world_size() if is_distributed() else value


def from_rank0(values: Sequence[float]) -> list[float]:
    """Rank 0's ``values`` on every process (a clock reading, a stop decision)."""
    t = torch.tensor(list(values), dtype=torch.float64)
    if is_distributed():
        dist.broadcast(t, src=0)
    return t.tolist()


def wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` (already on ``device``) in ``DistributedDataParallel``; its weights stay ``net``'s."""
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)


def barrier() -> None:
    """Wait until every process gets here."""
    if is_distributed():
        dist.barrier()


def check_same(**arrays: np.ndarray) -> None:
    """ValueError unless every process holds bitwise the same ``arrays`` (the encoded training
    data and validation entries, which each process computes from the data and the seed)."""
    if not is_distributed():
        return
    digest = [
        int.from_bytes(hashlib.sha256(np.ascontiguousarray(a).tobytes()).digest()[:7], "little")
        for a in arrays.values()
    ]
    mine = torch.tensor(digest, dtype=torch.int64)
    gathered = [torch.zeros_like(mine) for _ in range(world_size())]
    dist.all_gather(gathered, mine)
    differ = [name for k, name in enumerate(arrays) if any(g[k] != mine[k] for g in gathered)]
    if differ:
        raise ValueError(
            f"the processes computed different {', '.join(differ)}: training them together "
            "would not be one model (same data file, seed and package version on every process?)"
        )
