"""Load any saved model (``stimpute train`` checkpoints) by the format its folder records."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .base import Imputer

#: ``config.json`` format tag of a diffrecon checkpoint (the ST-Transformer's is the default).
DIFFRECON_FORMAT = "stimpute-diffrecon/"


def checkpoint_format(path: str | os.PathLike) -> str | None:
    """The ``format`` a checkpoint folder's ``config.json`` records (None when unreadable: the
    model's own loader then says what is wrong)."""
    try:
        meta = json.loads((Path(path) / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    return fmt if isinstance(fmt, str) else None


def load_model(path: str | os.PathLike, *, device: str | None = None) -> Imputer:
    """The fitted model saved at ``path``: a diffrecon or an ST-Transformer checkpoint, each
    loaded with every setting checked by its own loader (nothing is unpickled)."""
    if (checkpoint_format(path) or "").startswith(DIFFRECON_FORMAT):
        from .diffrecon.model import DiffReconImputer

        return DiffReconImputer.load(path, device=device)
    from .st_transformer.model import STTransformerImputer

    return STTransformerImputer.load(path, device=device)
