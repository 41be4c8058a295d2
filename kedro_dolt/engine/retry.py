"""The one retry policy: which failures mean "another writer was busy, nothing changed: try
again", and how often and how long to wait.

Transports never retry; the engine wraps an operation in :func:`with_retries` when running it
again is safe (reads, idempotent writes, and save or merge scripts, which change nothing when
they fail before their fast-forward).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import DoltCommandError

T = TypeVar("T")

#: Dolt's messages for an optimistic-concurrency failure: another process (a plain `dolt sql`
#: reader included) held the store for a moment. The statement changed nothing: try again.
_TRANSIENT = ("cannot update manifest", "database is read only", "serialization failure")
RETRY_ATTEMPTS = 10
RETRY_BASE_DELAY = 0.05  # seconds; doubled per attempt (up to RETRY_MAX_DELAY), with jitter
RETRY_MAX_DELAY = 1.0


def is_transient(exc: DoltCommandError) -> bool:
    if exc.transient:
        return True
    lowered = exc.dolt_message.lower()
    return any(fragment in lowered for fragment in _TRANSIENT)


def with_retries(attempt: Callable[[], T]) -> T:
    """Run ``attempt``; after a transient Dolt error, again with backoff (bounded)."""
    for tries in range(1, RETRY_ATTEMPTS + 1):
        try:
            return attempt()
        except DoltCommandError as exc:
            if tries == RETRY_ATTEMPTS or not is_transient(exc):
                raise
            delay = min(RETRY_BASE_DELAY * 2 ** (tries - 1), RETRY_MAX_DELAY)
            time.sleep(delay * (1 + random.random()))
    raise AssertionError("unreachable")


#: Pauses (seconds) before looking again at a state that may be a moment's (see :func:`still`).
RECHECK_DELAYS = (0.05, 0.1, 0.2, 0.4)


def still(seen: Callable[[], bool]) -> bool:
    """Whether ``seen()`` stays true when looked at again a few times, with pauses: a server
    updates a branch's head and its working set one after the other, so a reader can see the
    working set lag the head for a moment (a table looks changed while it is not)."""
    for delay in RECHECK_DELAYS:
        time.sleep(delay)
        if not seen():
            return False
    return True
