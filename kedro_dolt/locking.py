"""Per-repository locks so concurrent Kedro nodes never race on one Dolt repository.

Each ``dolt`` process takes an exclusive flock on ``.dolt/noms/LOCK`` and, if it cannot get it
within 100 ms, silently opens the repository read-only: two writers at once means one fails
with "database is read only". Every dolt invocation of kedro-dolt therefore holds this lock:
shared for reads (readers coexist: a reader that loses Dolt's own lock reads fine), exclusive
for writes. ``flock`` works across processes (ParallelRunner) and threads (ThreadRunner), as
each acquisition opens its own file description.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".kedro-dolt.lock"


@contextmanager
def repository_lock(database: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold the lock of the repository at ``database`` (created if needed) for the block."""
    database.mkdir(parents=True, exist_ok=True)
    fd = os.open(database / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the flock
