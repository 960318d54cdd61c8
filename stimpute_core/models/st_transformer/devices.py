"""Where the ST-Transformer runs and in which precision: the device asked for (refused when
this machine lacks it) and the dtype to autocast to."""

from __future__ import annotations

import torch


def pick_device(device: str | None = None) -> torch.device:
    """CUDA when present (or as asked), else CPU.

    An asked device must exist here: ValueError for an unknown name, and for ``cuda`` (or
    ``cuda:N``, ``mps``) on a machine where PyTorch sees no such device, before any work.
    """
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    expected = "expected cpu, cuda or cuda:N"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {device!r}: {expected}") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"device {device!r}: no GPU is available here (PyTorch sees no "
                             "CUDA device); use cpu")  # fmt: skip
        if dev.index is not None and dev.index >= n:
            raise ValueError(
                f"device {device!r}: this machine has {n} GPU(s), cuda:0..cuda:{n - 1}"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r}: no Apple GPU (MPS) is available here; use cpu")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r}: {expected}")
    return dev


#: Inference precisions: ``"auto"`` (bfloat16 on a GPU that computes it natively, float32 on
#: the CPU, where a whole-cube imputation was not faster in bfloat16), ``"float32"``,
#: ``"bfloat16"``.
PRECISIONS = ("auto", "float32", "bfloat16")


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (a GPU that supports it, a
    CPU with AVX-512 BF16 or AMX through oneDNN); elsewhere bfloat16 is emulated and slower."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or leaner torch build
        return False


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype to autocast to for ``precision`` on ``device`` (None: stay in float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    auto_fp32 = device.type != "cuda" or not bf16_native(device)
    if precision == "float32" or (precision == "auto" and auto_fp32):
        return None
    return torch.bfloat16


__all__ = ["PRECISIONS", "autocast_dtype", "bf16_native", "pick_device"]
