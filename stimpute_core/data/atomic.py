"""The atomic write every output goes through (files and folders), and the clean-up of what a
killed write left behind.

Temporaries of an atomic write lie beside the target as ``.<name>.<host>.<pid>.<random>.tmp``. A
process killed mid-write (``kill -9``, out of memory, power loss) cannot remove its own, so each
write first removes the stale temporaries of the same target: those of a process of this host that
no longer runs, and any older than :data:`STALE_AGE_S` (one day: no output of stimpute takes that
long to write, and a temporary of another host, or of an older version without a PID in its name,
can only be judged by age). Temporaries of a live writer are left alone.

A rewritten output keeps the permission bits of the file (or folder) it replaces; a new one gets
the usual default, ``0o666`` (``0o777`` for a folder) less the umask, as ``open`` would give it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

#: Age in seconds after which a temporary of an atomic write counts as stale whoever wrote it.
STALE_AGE_S = 24 * 3600


def _host() -> str:
    """This host's name as it goes into temporary names (letters, digits and ``-`` only)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _pid_running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _is_stale(tmp: Path, prefix: str, now: float) -> bool:
    """Whether ``tmp`` (a temporary of the target ``prefix`` names) was left by a dead writer."""
    try:
        age = now - tmp.lstat().st_mtime
    except FileNotFoundError:
        return False
    parts = tmp.name[len(prefix) : -len(".tmp")].split(".")
    if len(parts) not in (1, 3):  # neither an older version's name nor this one's
        return False
    if age > STALE_AGE_S:
        return True
    if len(parts) == 3 and parts[0] == _host() and parts[1].isdigit():
        return int(parts[1]) != os.getpid() and not _pid_running(int(parts[1]))
    return False


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that killed writes of ``path`` left behind; return those removed.

    See the module docstring for which count as stale. Called by every atomic write.
    """
    path = Path(path)
    prefix = f".{path.name}."
    now = time.time()
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for tmp in entries:
        name = tmp.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        if not _is_stale(tmp, prefix, now):
            continue
        with contextlib.suppress(OSError):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed.append(tmp)
    return removed


def check_creatable(path: str | os.PathLike, label: str) -> None:
    """ValueError (naming ``label``) unless ``path`` could be created: its nearest existing
    ancestor must be a folder this process may write in. Checked before long work."""
    parent = Path(path).absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{label} cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{label} cannot be written: no permission to write in {parent}")


def _mode(path: Path, new: Path) -> int:
    """Permission bits for the output: those of the ``path`` it replaces, else those ``new``
    was created with (the default less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return stat.S_IMODE(new.stat().st_mode)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write`` fills a temporary file, which then replaces ``path``.

    The temporary file lies in the same folder (so :func:`os.replace` is a rename within one file
    system; its name is in the module docstring); ``write`` gets its path, may overwrite it, and
    what it returns is ignored. The file is flushed to disk (``fsync``) before the rename. If
    ``write`` (or anything after it) raises, even ``KeyboardInterrupt``, the temporary file is
    removed and the error re-raised: an existing file under ``path`` is never lost nor left
    half-written. The result keeps the mode of the file it replaces (module docstring). Missing
    parent folders are created. ``ValueError`` when ``path`` is a folder. Returns ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: expected the path of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _tmp_name(path)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        mode = _mode(path, tmp)
        write(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def replace_dir(new: Path, path: Path) -> None:
    """Put the finished folder ``new`` in the place of ``path``: an existing ``path`` is moved
    aside to ``.<name>.old`` until ``new`` is in place, then removed."""
    old = path.with_name(f".{path.name}.old")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(new, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, path)


def atomic_write_dir(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write the folder ``path`` atomically: ``write`` fills a temporary folder beside it, which
    then takes its place (an existing folder is moved aside to ``.<name>.old`` first and removed
    after).

    If ``write`` raises, the temporary folder is removed and an existing ``path`` is left as it
    was. A folder that a killed earlier write left moved aside (``path`` absent, ``.<name>.old``
    present) is put back first, so it is not lost. The folder keeps the mode of the one it
    replaces, else gets ``0o777`` less the umask. ``ValueError`` when ``path`` is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file: expected the path of a folder to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and not path.is_symlink() and old.is_dir():
        os.replace(old, path)
    remove_stale_temporaries(path)
    tmp = _tmp_name(path)
    os.mkdir(tmp, 0o777)
    try:
        tmp.chmod(_mode(path, tmp))
        write(tmp)
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


__all__ = [
    "STALE_AGE_S",
    "atomic_write",
    "atomic_write_dir",
    "check_creatable",
    "remove_stale_temporaries",
    "replace_dir",
]
