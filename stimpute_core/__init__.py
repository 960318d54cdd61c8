"""stimpute_core: gap-filling of sparse satellite soil moisture, the baselines and the validation.

Flow: readers -> contract Dataset (:mod:`stimpute_core.data`) -> hold-out masks
(:mod:`stimpute_core.masks`) -> imputers (:mod:`stimpute_core.models.baselines`, later the
ST-Transformer) -> metrics (:mod:`stimpute_core.metrics`) -> benchmark, app and notebooks.
"""

__version__ = "0.1.0"
