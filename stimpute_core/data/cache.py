"""Where stimpute caches what it derives (the built-in scenario, ISMN metadata, app data)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$STIMPUTE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/stimpute`` (``~/.cache/stimpute``)."""
    env = os.environ.get("STIMPUTE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stimpute"


__all__ = ["default_cache_dir"]
