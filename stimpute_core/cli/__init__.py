"""The ``stimpute`` command line: data preparation, training, imputation and the benchmark.

Every command only calls library functions; errors print one clear message and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..data import ContractError
from ..data.readers import ReaderError
from .common import eprint
from .data_commands import add_data_commands
from .forecast_command import add_forecast_command
from .model_commands import add_model_commands


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stimpute`` command."""
    parser = argparse.ArgumentParser(
        prog="stimpute", description="Gap-filling of sparse satellite soil moisture."
    )
    parser.add_argument("--version", action="version", version=f"stimpute {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_commands(sub)
    add_model_commands(sub)
    add_forecast_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stimpute`` console command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ContractError, ValueError, OSError, ReaderError) as err:  # OSError: disk, permissions
        eprint(f"stimpute: error: {err}")
        return 2
    except KeyboardInterrupt:
        eprint("stimpute: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
