"""``python -m stimpute_core.cli`` (and ``torchrun -m stimpute_core.cli``): ``stimpute``."""

import sys

from . import main

sys.exit(main())
