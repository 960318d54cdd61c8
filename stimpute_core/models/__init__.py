"""Every imputer by name: baselines, the ST-Transformer with its ablations, and PyPOTS peers.

``make_imputer(name, **options)`` builds one. Options that only the ST-Transformer understands
(``profile``, ``mask_kind``, ``seed``, ``epochs``, ``max_minutes``, ``device``) are ignored by the
baselines, so one benchmark loop can pass the same options to every model.
"""

from __future__ import annotations

from typing import Any

from ..baselines import BASELINES
from ..imputation import Imputer

#: ST-Transformer variants: the paper's two spatial attentions and its ablations.
ST_VARIANTS: dict[str, dict[str, Any]] = {
    "st-transformer": {"spatial": "swin"},
    "st-transformer-msa": {"spatial": "full"},
    "st-transformer-nospace": {"spatial": "none"},
    "st-transformer-notime": {"temporal": False},
    "st-transformer-nocov": {"use_covariates": False},
}
ST_OPTIONS = ("profile", "mask_kind", "seed", "epochs", "max_minutes", "device", "impute_stride")
#: Peers from PyPOTS (optional extra ``peers``), cells as features.
PEERS = {"saits": "SAITS", "brits": "BRITS"}
MODEL_NAMES = (*BASELINES, *ST_VARIANTS, *PEERS)


def make_imputer(name: str, **options: Any) -> Imputer:
    """An unfitted imputer called ``name`` (see :data:`MODEL_NAMES`)."""
    if name in BASELINES:
        return BASELINES[name]()
    if name in ST_VARIANTS:
        from .st_transformer.model import STTransformerImputer

        chosen = {k: v for k, v in options.items() if k in ST_OPTIONS and v is not None}
        return STTransformerImputer(**ST_VARIANTS[name], **chosen)
    if name in PEERS:
        from ..peers import PyPOTSImputer

        epochs = options.get("epochs") or 30
        return PyPOTSImputer(model=PEERS[name], seed=options.get("seed", 0), epochs=epochs)
    raise ValueError(f"unknown model {name!r}: choose from {', '.join(MODEL_NAMES)}")
