"""What every command shares: printing to stderr, the checks of option values and output paths.

The option checks are ``argparse`` types: a bad value stops the command before any work, with
argparse's usage line and a message naming the option, the value and what it takes (exit code 2).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from ..data.io import check_creatable


def eprint(*args: object) -> None:
    """Print a message for the user on stderr (stdout carries the results)."""
    print(*args, file=sys.stderr, flush=True)


def _number(text: str, convert, ok, expected: str):
    """``convert(text)`` if it converts and passes ``ok``, else argparse's error naming what
    was expected."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {expected}")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1 (epochs, seeds)."""
    return _number(text, int, lambda v: v >= 1, "a whole number of at least 1")


def seed(text: str) -> int:
    """A non-negative integer (a random seed)."""
    return _number(text, int, lambda v: v >= 0, "a whole number of at least 0")


def minutes(text: str) -> float:
    """A time budget in minutes: a finite number above 0 (``nan``, ``inf``, 0 and below are
    refused; leave the option out for the default)."""
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a number of minutes above 0")


def fraction(text: str) -> float:
    """A fraction strictly between 0 and 1."""
    return _number(text, float, lambda v: 0 < v < 1, "a number between 0 and 1")


def quantile_levels(text: str) -> tuple[float, ...]:
    """Comma-separated quantile levels strictly between 0 and 1, e.g. ``0.05,0.5,0.95``."""
    from ..models.base import check_quantiles

    try:
        return check_quantiles([float(part) for part in text.split(",")])
    except ValueError as err:
        reason = str(err) if "quantile" in str(err) else "not a number"
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected levels between 0 and 1 separated by commas, e.g. 0.05,0.5,0.95 "
            f"({reason})"
        ) from None


def day(text: str) -> str:
    """A calendar day as YYYY-MM-DD."""
    try:
        value = pd.Timestamp(text)
    except (ValueError, TypeError):
        value = pd.NaT
    if pd.isna(value):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a day as YYYY-MM-DD")
    return f"{value:%Y-%m-%d}"


def device(text: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` that this machine has (no GPU here: a clear refusal)."""
    from ..models.st_transformer.training import pick_device

    try:
        pick_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def check_output_file(path: Path, option: str) -> Path:
    """``path`` if a file (or a Zarr store, a name ending ``.zarr``) can be written there, else
    ValueError naming ``option``: checked before the work whose result it will hold, so no
    result is lost to a bad path."""
    from ..data.zarr_io import SUFFIX, is_store

    if path.suffix.lower() == SUFFIX:  # a Zarr store: a folder, new or replacing a store
        if path.exists() and not is_store(path):
            raise ValueError(f"{option} {path}: exists and is not a Zarr store; give another path")
    elif path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give the path of a file to write")
    check_creatable(path, f"{option} {path}")
    return path
