"""What every command shares: printing to stderr, the checks of option values and output paths.

The option checks are ``argparse`` types: a bad value stops the command before any work, with
argparse's usage line and a message naming the option, the value and what it takes (exit code 2).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import pandas as pd


def eprint(*args: object) -> None:
    """Print a message for the user on stderr (stdout carries the results)."""
    print(*args, file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """An integer of at least 1 (epochs, seeds)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return value


def seed(text: str) -> int:
    """A non-negative integer (a random seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 0")
    return value


def minutes(text: str) -> float:
    """A time budget in minutes: a finite number above 0 (``nan``, ``inf``, 0 and below are
    refused; leave the option out for the default)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of minutes above 0")
    return value


def fraction(text: str) -> float:
    """A fraction strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number between 0 and 1")
    return value


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
    """``path`` if a file can be written there, else ValueError naming ``option``: checked
    before the work whose result it will hold, so no result is lost to a bad path."""
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give the path of a file to write")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: no permission to write in {parent}")
    return path
