"""What every command shares: printing to stderr."""

from __future__ import annotations

import sys


def eprint(*args: object) -> None:
    """Print a message for the user on stderr (stdout carries the results)."""
    print(*args, file=sys.stderr, flush=True)
