"""Server hooks of ``panel serve app/`` (Bokeh's directory-app convention)."""

import sys
import time
import traceback

from workbench.page import warm_up

READY = "stimpute: ready"


def on_server_loaded(server_context) -> None:
    """Warm up before the first page, so that it opens as fast as later ones.

    Bokeh runs this on the server's loop once it listens: a request that comes during the
    warm-up waits for it. The line printed at the end says the server is ready. A warm-up that
    fails (say, a bad ``STIMPUTE_DATA`` file) is reported and the server goes on: each page then
    shows the problem itself.
    """
    t0 = time.perf_counter()
    try:
        warm_up()
        what = f"warm-up {time.perf_counter() - t0:.1f} s"
    except Exception as err:
        traceback.print_exc()
        what = f"without warm-up, which failed: {err}"
    print(f"{READY} ({what})", file=sys.stderr, flush=True)
