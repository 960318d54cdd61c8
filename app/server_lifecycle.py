"""Server hooks of ``panel serve app/`` (Bokeh's directory-app convention)."""

import sys
import time

from workbench.page import warm_up

READY = "stimpute: ready"


def on_server_loaded(server_context) -> None:
    """Warm up before serving, so that the first page opens as fast as later ones.

    Bokeh runs this on the server's loop once it listens: a request that comes during the
    warm-up waits for it. The line printed at the end says the server is ready.
    """
    t0 = time.perf_counter()
    warm_up()
    print(f"{READY} (warm-up {time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
