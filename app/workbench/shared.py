"""What every session of one server shares: its folders, its default data and a results cache.

Directories are set by whoever starts the server, never by the browser:

- ``STIMPUTE_DATA_DIR``: the folder whose entries (contract NetCDF, recipes, granule folders,
  in-situ archives) the page offers; default ``<cache>/data``;
- ``STIMPUTE_MODELS_DIR``: where checkpoints are saved and loaded; default ``<cache>/models``;
- ``STIMPUTE_DATA``: a contract NetCDF opened instead of the built-in scenario.

The per-session state is in ``state.py``; this module holds nothing of a session.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import xarray as xr

from stimpute_core.data import open_dataset
from stimpute_core.data.scenario import (
    ScenarioConfig,
    default_cache_dir,
    load_scenario,
    scenario_path,
)
from stimpute_core.models.st_transformer.checkpoint import is_checkpoint
from stimpute_core.models.st_transformer.model import (
    DEFAULT_PRETRAINED,
    PRETRAINED_DIR,
    pretrained_path,
)

from .jobs import Job

BUILTIN = "built-in TxSON scenario"
SHIPPED = "shipped: "
#: Checkpoint names typed in the page: a plain folder name, nothing that could walk elsewhere.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Start of the names the page gives the models it saves after training
#: (``session-<session id>-<time>``); never a name typed in the page, so that no session can
#: replace another's.
AUTOSAVE = "session-"

T = TypeVar("T")

#: Guards the cache's bookkeeping only; never held while a value is computed.
_LOCK = threading.Lock()
_SHARED: OrderedDict[tuple, Any] = OrderedDict()
_SHARED_MAX = 24
#: Values being computed, by key: a second caller waits on the first one's.
_MAKING: dict[tuple, _Pending] = {}
_DEFAULT_JOB: Job | None = None


def data_dir() -> Path:
    """The folder whose entries the page offers (``STIMPUTE_DATA_DIR``)."""
    return Path(os.environ.get("STIMPUTE_DATA_DIR") or default_cache_dir() / "data")


def models_dir() -> Path:
    """Where checkpoints are saved and loaded (``STIMPUTE_MODELS_DIR``)."""
    return Path(os.environ.get("STIMPUTE_MODELS_DIR") or default_cache_dir() / "models")


class _Pending:
    """A value one thread is computing; others wait for it (the value or the error)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def result(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


def _shared(key: tuple, make: Callable[[], T]) -> T:
    """A value shared by every session of this server (read-only data and imputations).

    The first caller for ``key`` runs ``make``; a caller that comes for the same key meanwhile
    waits for that result (or gets its error) instead of computing it again, while callers for
    other keys go on at once. A failed ``make`` is not kept: the next caller tries again. The
    last ``_SHARED_MAX`` values are kept.

    Not ``pn.cache``: that hashes the arguments (whole Datasets, by content) and keeps values per
    function, whereas here a cheap key names the data and one bound holds across all values.
    """
    with _LOCK:
        if key in _SHARED:
            _SHARED.move_to_end(key)
            return _SHARED[key]
        pending = _MAKING.get(key)
        first = pending is None
        if first:
            pending = _MAKING[key] = _Pending()
    assert pending is not None
    if not first:
        return pending.result()
    try:
        value = make()
    except BaseException as err:
        pending.error = err
        with _LOCK:
            _MAKING.pop(key, None)
        pending.done.set()
        raise
    pending.value = value
    with _LOCK:
        _SHARED[key] = value
        while len(_SHARED) > _SHARED_MAX:
            _SHARED.popitem(last=False)
        _MAKING.pop(key, None)
    pending.done.set()
    return value


def default_dataset(progress=None) -> tuple[str, xr.Dataset]:
    """The server's default data: ``STIMPUTE_DATA`` or the built-in scenario (made on first use)."""
    path = os.environ.get("STIMPUTE_DATA")
    if path:
        return Path(path).name, _shared(("data", path), lambda: open_dataset(path))
    return BUILTIN, _shared(("data", BUILTIN), lambda: load_scenario(progress=progress))


def data_is_ready() -> bool:
    """Whether the default data can be opened at once (named file, or scenario cached/loaded)."""
    if os.environ.get("STIMPUTE_DATA"):
        return True
    return _default_if_loaded(BUILTIN) is not None or scenario_path(ScenarioConfig()).is_file()


def default_data_job(*, wait: bool = False) -> Job:
    """The server's one job that makes the default data ready; every session polls it.

    The first session of a fresh server starts it (the built-in scenario is generated and cached
    then, in seconds); later sessions find it done. A failed job is started again. ``wait``
    joins it (for data that open in a second or two, where a progress page is not worth it).
    """
    global _DEFAULT_JOB
    with _LOCK:
        job = _DEFAULT_JOB
        if job is None or job.status == "failed":
            job = _DEFAULT_JOB = Job(
                "data", lambda j: default_dataset(progress=lambda m: j.report(None, m))
            )
            job.start()
    if wait:
        job.join()
    return job


def _default_if_loaded(label: str) -> xr.Dataset | None:
    """The server's default Dataset when it is already loaded under ``label``, else None."""
    path = os.environ.get("STIMPUTE_DATA")
    key = ("data", path) if path else ("data", BUILTIN)
    name = Path(path).name if path else BUILTIN
    with _LOCK:
        return _SHARED.get(key) if label == name else None


def list_checkpoints() -> list[str]:
    """Checkpoints offered for loading: the shipped one(s), then those in the models folder."""
    shipped = [f"{SHIPPED}{DEFAULT_PRETRAINED}"]
    root = models_dir()
    saved = []
    if root.is_dir():
        saved = sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
        )
    return shipped + saved


def checkpoint_path(label: str) -> Path:
    """The folder of a checkpoint offered by :func:`list_checkpoints` (nothing else)."""
    if label not in list_checkpoints():
        raise ValueError(f"checkpoint {label!r} is not one of those offered")
    if label.startswith(SHIPPED):
        return pretrained_path(label[len(SHIPPED) :])
    if not NAME_PATTERN.match(label):
        raise ValueError(f"checkpoint {label!r} is not a plain folder name")
    return models_dir() / label


def save_in_models_dir(model, name: str, *, overwrite: bool = False, own=()) -> Path:
    """Save ``model`` as ``name`` in the models folder; return its folder.

    What a shared folder needs: an existing checkpoint of that name is replaced only with
    ``overwrite`` (the user confirmed) and only if this session saved it (its names in ``own``):
    another session's checkpoint, one from before this session, anything that is not a
    checkpoint and the shipped checkpoints are never replaced. Messages name the checkpoint,
    never a server path.
    """
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"checkpoint name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    root = models_dir()
    if root.resolve().is_relative_to(PRETRAINED_DIR.resolve()):
        raise ValueError(
            "the models folder is that of the shipped checkpoints: nothing is saved there"
        )
    path = root / name
    if path.exists() or path.is_symlink():
        if not is_checkpoint(path):
            raise ValueError(
                f"{name!r} in the models folder holds other files than a checkpoint: it is never "
                "replaced; choose another name"
            )
        if not overwrite:
            raise ValueError(
                f"a checkpoint named {name!r} exists: tick Overwrite to replace it, or choose "
                "another name"
            )
        if name not in own:
            raise ValueError(
                f"checkpoint {name!r} was not saved in this session: it is kept; choose another "
                "name"
            )
    return model.save(path, overwrite=overwrite)
