"""Private scratch branches and temp dirs of saves, and recognising those of dead processes.

A save never writes where anyone reads: it writes and commits on a scratch branch named
``kedro-dolt/<purpose>/<host>/<pid>/<random>`` and then fast-forwards the target branch to it.
A process killed mid-save leaves its scratch branch (and its temp dir of rows) behind; the
names say which host and process own them, so the next kedro-dolt operation on the same host
removes exactly those whose process is gone. A save of this process that could not delete its
branch (a server that died mid-save) leaves one this process no longer uses: it is released,
and removed like a dead process's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

BRANCH_PREFIX = "kedro-dolt/"
TEMP_PREFIX = "kedro-dolt-"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_OWNED = re.compile(
    rf"^{re.escape(BRANCH_PREFIX)}[a-z]+/(?P<host>[A-Za-z0-9_-]+)/(?P<pid>\d+)/[0-9a-f]+$"
)
_TEMP = re.compile(rf"^{re.escape(TEMP_PREFIX)}(?P<pid>\d+)-")


def _host() -> str:
    return _UNSAFE.sub("-", socket.gethostname()).strip("-")[:40] or "host"


#: This process's scratch branches in use (added when named, removed by :func:`release`).
_IN_USE: set[str] = set()
_IN_USE_LOCK = threading.Lock()


def branch_name(purpose: str) -> str:
    """A fresh scratch branch name owned by this process, e.g. ``kedro-dolt/save/h/42/ab12``,
    in use until :func:`release`."""
    name = f"{BRANCH_PREFIX}{purpose}/{_host()}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
    with _IN_USE_LOCK:
        _IN_USE.add(name)
    return name


def release(name: str) -> None:
    """The operation that named ``name`` is over: a branch of that name left behind is debris."""
    with _IN_USE_LOCK:
        _IN_USE.discard(name)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def is_stale(branch: str) -> bool:
    """Whether ``branch`` is a kedro-dolt scratch branch whose owner is known to be dead, or
    one of this process's that no operation uses any more.

    Branches of other hosts are never judged (their processes cannot be seen from here).
    Names without an owner (``kedro-dolt/merge-<hex>`` of kedro-dolt 0.1) are debris of an
    older version and count as stale.
    """
    if not branch.startswith(BRANCH_PREFIX):
        return False
    owned = _OWNED.match(branch)
    if owned is None:
        return True
    if owned["host"] != _host():
        return False
    pid = int(owned["pid"])
    if pid == os.getpid():
        with _IN_USE_LOCK:
            return branch not in _IN_USE
    return not pid_alive(pid)


def stale_branches(names: Iterable[str]) -> list[str]:
    return sorted(name for name in names if is_stale(name))


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    """A temp dir for a save's rows, named after this process so a crash's leftovers are
    recognised (:func:`remove_stale_temp_dirs`)."""
    return tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-")


def remove_stale_temp_dirs(root: Path | None = None) -> list[Path]:
    """Delete temp dirs left by kedro-dolt processes that no longer run; return them."""
    base = root or Path(tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for path in base.glob(f"{TEMP_PREFIX}*"):
            owner = _TEMP.match(path.name)
            if owner and path.is_dir() and not pid_alive(int(owner["pid"])):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
