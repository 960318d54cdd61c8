"""Every imputer by name: baselines (covariate-blind and covariate-aware), the ST-Transformer with
its ablations, and PyPOTS peers.

``make_imputer(name, **options)`` builds one. Options that only the ST-Transformer understands
(``profile``, ``mask_kind``, ``seed``, ``epochs``, ``max_minutes``, ``device``) are ignored by the
baselines, so one benchmark loop can pass the same options to every model.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..baselines import BASELINES
from ..covariate_baselines import COVARIATE_BASELINES
from ..imputation import Imputer

#: ST-Transformer variants: the paper's two spatial attentions and its ablations, and the
#: ablations of the inputs this package adds (``st-transformer-paper`` has none of them).
ST_VARIANTS: dict[str, dict[str, Any]] = {
    "st-transformer": {"spatial": "swin"},
    "st-transformer-msa": {"spatial": "full"},
    "st-transformer-nospace": {"spatial": "none"},
    "st-transformer-notime": {"temporal": False},
    "st-transformer-nocov": {"use_covariates": False},
    # Ablations of the inputs added to the paper's (see the README's ST-Transformer section).
    "st-transformer-noprior": {"prior": None},
    "st-transformer-noderived": {"derived_inputs": False},
    "st-transformer-nocontext": {"cell_context": False},
    "st-transformer-nodaypool": {"day_pool": False},
    "st-transformer-paper": {
        "prior": None,
        "derived_inputs": False,
        "cell_context": False,
        "day_pool": False,
    },
}
#: The ST-Transformer's profiles (``PROFILES`` in its model module, which imports torch; a
#: test keeps the two in step).
PROFILE_NAMES = ("tiny", "quick", "long", "paper")
ST_OPTIONS = (
    "profile",
    "mask_kind",
    "seed",
    "epochs",
    "max_minutes",
    "patience",
    "device",
    "impute_stride",
    "impute_precision",
)
#: Peers from PyPOTS (optional extra ``peers``), cells as features.
PEERS = {"saits": "SAITS", "brits": "BRITS", "csdi": "CSDI"}
#: Every baseline by name: the covariate-blind ones, then those that use the covariates.
ALL_BASELINES = {**BASELINES, **COVARIATE_BASELINES}
MODEL_NAMES = (*ALL_BASELINES, *ST_VARIANTS, *PEERS)


#: Methods that take minutes per fit on a CPU at the built-in scenario's size (``--skip`` them).
SLOW_ON_CPU: dict[str, str] = {
    "mice": "chained regressions on 100,000 rows: about a minute per fit",
    "forest": "100 trees on every observed entry: about half a minute per fit",
    **{name: "trains a network: minutes per fit" for name in ST_VARIANTS},
    **{name: "trains a network: minutes per fit" for name in PEERS},
}


def installed_models() -> list[str]:
    """Every model whose dependencies are installed (the PyPOTS peers need the ``peers`` extra)."""
    try:
        import pypots  # noqa: F401

        peers = list(PEERS)
    except ImportError:
        peers = []
    return [*ALL_BASELINES, *ST_VARIANTS, *peers]


def make_imputer(name: str, **options: Any) -> Imputer:
    """An unfitted imputer called ``name`` (see :data:`MODEL_NAMES`)."""
    if name in ALL_BASELINES:
        cls = ALL_BASELINES[name]
        # A baseline with a random element (MICE's subsample, the forest) follows the run's seed.
        takes_seed = "seed" in inspect.signature(cls).parameters
        return cls(seed=options["seed"]) if takes_seed and "seed" in options else cls()
    if name in ST_VARIANTS:
        from .st_transformer.model import STTransformerImputer

        unknown = sorted(set(options) - set(ST_OPTIONS))
        if unknown:  # a misspelt or unsupported option must not be dropped without a word
            raise ValueError(
                f"{name}: unknown option(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(ST_OPTIONS)}"
            )
        chosen = {k: v for k, v in options.items() if v is not None}
        return STTransformerImputer(**ST_VARIANTS[name], **chosen)
    if name in PEERS:
        from ..peers import PyPOTSImputer

        epochs = options.get("epochs") or 30
        return PyPOTSImputer(model=PEERS[name], seed=options.get("seed", 0), epochs=epochs)
    raise ValueError(f"unknown model {name!r}: choose from {', '.join(MODEL_NAMES)}")
