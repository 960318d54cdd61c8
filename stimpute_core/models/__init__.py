"""Every imputer, registered in one place: baselines (covariate-blind and covariate-aware), the
ST-Transformer with its ablations, and the PyPOTS peers.

Layout: :mod:`.base` (the interface), :mod:`.baselines` (covariate-blind), :mod:`.covariate`
(references that use the covariates), :mod:`.pypots` (peers), :mod:`.st_transformer` (the
network, its inputs, prior and training loop), :mod:`.pretrained` (a fitted model in the same
loop as models to fit), :mod:`.checks` (the conformance suite every registered model passes);
:mod:`.features`, :mod:`.smoothing` and :mod:`.windows` are the parts several models share.

``make_imputer(name, **options)`` builds one by its registry key, which is also its ``name``.
"""

from __future__ import annotations

import inspect
from typing import Any

from .base import Imputer, is_probabilistic  # noqa: F401 (the registry's callers ask it)
from .baselines import BASELINES
from .covariate import COVARIATE_BASELINES
from .pypots import PEERS

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
    # The SVQ bottleneck (off by default; see the README's SVQ section).
    "st-transformer-svq": {"bottleneck": "svq"},
    "st-transformer-svq-post": {"bottleneck": "svq", "svq_placement": "post"},
    "st-transformer-paper": {
        "prior": None,
        "derived_inputs": False,
        "cell_context": False,
        "day_pool": False,
    },
}
#: Probabilistic references: a reference with cross-fitted conformal intervals from residuals at
#: held-out entries (:class:`~stimpute_core.models.conformal.Conformal`; its ``base`` is fixed).
CONFORMAL_VARIANTS: dict[str, dict[str, Any]] = {
    f"{base}-conformal": {"base": base} for base in ("regression", "coarse", "idw", "boosting")
}
#: The ST-Transformer's profiles (``PROFILES`` in its model module, which imports torch; a
#: test keeps the two in step).
PROFILE_NAMES = ("tiny", "quick", "long", "paper")
#: Options of a benchmark run that :func:`make_imputer` passes to each model that takes them.
RUN_OPTIONS = (
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
#: Every baseline by name: the covariate-blind ones, then those that use the covariates.
ALL_BASELINES = {**BASELINES, **COVARIATE_BASELINES}
#: Diffusion imputers (torch is imported only when one is built): name -> what it is.
DIFFUSION: dict[str, str] = {"diffrecon": "two-stage conditional diffusion (DiffRecon reading)"}
MODEL_NAMES = (*ALL_BASELINES, *CONFORMAL_VARIANTS, *ST_VARIANTS, *PEERS, *DIFFUSION)


#: Methods that take minutes per fit on a CPU at the built-in scenario's size (``--skip`` them).
SLOW_ON_CPU: dict[str, str] = {
    "mice": "chained regressions on 100,000 rows: about a minute per fit",
    "forest": "100 trees on every observed entry: about half a minute per fit",
    **{name: "trains a network: minutes per fit" for name in ST_VARIANTS},
    **{name: "trains a network: minutes per fit" for name in PEERS},
    **{name: "trains two diffusion networks and samples: minutes per fit" for name in DIFFUSION},
}


def installed_models() -> list[str]:
    """Every model whose dependencies are installed (the PyPOTS peers need the ``peers`` extra)."""
    try:
        import pypots  # noqa: F401

        peers = list(PEERS)
    except ImportError:
        peers = []
    return [*ALL_BASELINES, *CONFORMAL_VARIANTS, *ST_VARIANTS, *peers, *DIFFUSION]


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls).parameters


def make_imputer(name: str, **options: Any) -> Imputer:
    """An unfitted imputer called ``name`` (see :data:`MODEL_NAMES`).

    ``options`` are constructor settings of that model (``make_imputer("idw", power=3)``) or
    run options (:data:`RUN_OPTIONS`: ``seed``, ``profile``, ``epochs`` ...), which one benchmark
    loop passes to every model: a model takes the run options its constructor has and ignores the
    others (a baseline has no ``profile``). Any other option is refused, naming the allowed ones,
    so a misspelt setting is never dropped without a word. ``None`` leaves a setting at its default.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}: choose from {', '.join(MODEL_NAMES)}")
    if name in ST_VARIANTS:
        from .st_transformer.model import STTransformerImputer

        cls: type = STTransformerImputer
        fixed = dict(ST_VARIANTS[name])
    elif name in PEERS:
        cls, fixed = PEERS[name], {}
    elif name in DIFFUSION:
        from .diffrecon.model import DiffReconImputer

        cls, fixed = DiffReconImputer, {}
    elif name in CONFORMAL_VARIANTS:
        from .conformal import Conformal

        cls, fixed = Conformal, dict(CONFORMAL_VARIANTS[name])
    else:
        cls, fixed = ALL_BASELINES[name], {}
    allowed = [p for p in inspect.signature(cls).parameters if p not in fixed]
    unknown = sorted(k for k in options if k not in allowed and k not in RUN_OPTIONS)
    if unknown:
        raise ValueError(
            f"{name}: unknown option(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted({*allowed, *RUN_OPTIONS}))}"
        )
    chosen = {k: v for k, v in options.items() if v is not None and _accepts(cls, k)}
    return cls(**fixed, **chosen)
