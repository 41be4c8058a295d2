"""Per-repository locks so concurrent Kedro nodes never race on one Dolt repository.

Each ``dolt`` process takes an exclusive flock on ``.dolt/noms/LOCK`` and, if it cannot get it
within 100 ms, silently opens the repository read-only: two writers at once means one fails
with "database is read only". Every dolt invocation of kedro-dolt therefore holds this lock:
shared for reads (readers coexist: a reader that loses Dolt's own lock reads fine), exclusive
for writes. ``flock`` works across processes (ParallelRunner) and threads (ThreadRunner), as
each acquisition opens its own file description.

A user who may read but not write the repository (a shared data directory) still loads: see
:func:`repository_lock`. Saving there fails with a ``DoltError`` before anything is written.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DoltError

LOCK_FILE = ".kedro-dolt.lock"
# Dolt 1.86 opens these read-write even for a SELECT (flock, then its chunk journal), and
# writes LOCK and manifest with mode 0600 (the manifest anew at each commit): a user without
# write access to them cannot read the repository at all, whatever kedro-dolt does.
_DOLT_READ_WRITE = (Path(".dolt", "noms", "LOCK"), Path(".dolt", "noms", "v" * 32))
_NO_WRITE_ACCESS = (errno.EACCES, errno.EPERM, errno.EROFS)


@contextmanager
def repository_lock(database: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the lock of the repository at ``database`` for the block.

    Exclusive (writes): the lock file is created if needed, with the directory; a repository
    the user cannot write raises ``DoltError`` here, before any write starts.

    Shared (reads): the lock file is opened read-only when it cannot be opened for writing
    (``flock`` does not need write access), and skipped when it does not exist and cannot be
    created. Skipping is safe: the lock only keeps kedro-dolt's writers and readers from
    racing for Dolt's own ``noms/LOCK``, never guards data (Dolt's commits are atomic and a
    read sees committed data only), and a reader needs no protection from other readers. A
    missing lock file means no kedro-dolt writer has used this repository; one that starts
    during the read sees at worst Dolt's retryable "database is read only", not damage.
    """
    fd = _open_exclusive(database) if exclusive else _open_shared(database)
    try:
        _check_dolt_access(database)
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the flock


def _open_exclusive(database: Path) -> int:
    try:
        database.mkdir(parents=True, exist_ok=True)
        return os.open(database / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in _NO_WRITE_ACCESS:
            raise
        raise DoltError(
            f"Cannot write to the Dolt repository at {database}: this user may not write "
            f"there ({exc.strerror}: {exc.filename}). Nothing was changed.",
            fix="run as the user who owns the repository, or save into a repository of your "
            "own: point `database` at a new directory, or at a `dolt clone` of this "
            "repository's remote.",
        ) from exc


def _open_shared(database: Path) -> int | None:
    path = database / LOCK_FILE
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags, 0o644)
        except FileNotFoundError:
            return None  # no lock file and the directory cannot take one: read unlocked
        except OSError as exc:
            if exc.errno not in _NO_WRITE_ACCESS:
                raise
    return None  # exists but is unreadable too: read unlocked (see repository_lock)


def _check_dolt_access(database: Path) -> None:
    """A clear error instead of Dolt's bare "permission denied" on a repository whose files
    this user cannot write (which Dolt needs even to read)."""
    for relative in _DOLT_READ_WRITE:
        path = database / relative
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise DoltError(
                f"Dolt cannot open the repository at {database}: it needs write access to "
                f"{relative} even to read, and this user has none. Nothing was changed.",
                fix="run as the user who owns the repository's .dolt directory (Dolt keeps "
                "its files readable by their owner only), or have that user push "
                "it to a remote you can `dolt clone`, or serve it with `dolt sql-server`.",
            )
