"""stimpute workbench: ``panel serve app/``.

From a study area to an imputed, validated and explained soil-moisture record, without code:
pick data and a region, see its sparsity, load or train a model in the background, compare the
imputation with the observations, the truth (synthetic data) and the TxSON stations, look at
attention and error by land cover, and export. The page is laid out in ``workbench/page.py``,
the session state is in ``workbench/state.py`` and all the science in ``stimpute_core``.
"""

from workbench.page import create_app, extensions

extensions()
create_app().servable()
