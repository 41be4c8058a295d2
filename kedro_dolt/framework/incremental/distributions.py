"""Which installed distribution provides a top-level module, remembered across runs.

``importlib.metadata.packages_distributions()`` reads every installed distribution's
metadata (about 200 ms in a Kedro environment); its answer only changes when something is
installed or removed, which changes the mtime of a directory on ``sys.path``. So it is kept
in ``distributions.json`` beside the load cache directory, keyed by those directories and
their mtimes, and read back while they are the same.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile

from ...engine import load_cache


def _key() -> str:
    entries = []
    # Where distributions are installed; not the project root (on sys.path under
    # `python -m kedro`), whose files come and go with every run.
    for path in (p for p in sys.path if "site-packages" in p or "dist-packages" in p):
        with contextlib.suppress(OSError):
            if os.path.isdir(path):
                entries.append([path, os.stat(path).st_mtime_ns])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def distributions() -> dict[str, list[str]]:
    """Top-level module -> the names of the distributions that provide it."""
    store = load_cache.shared().root.with_name("distributions.json")
    key = _key()
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        kept = json.loads(load_cache.read_private(store) or b"{}")
        if kept["key"] == key and isinstance(kept["map"], dict):
            return {str(k): [str(n) for n in v] for k, v in kept["map"].items()}
    found = {k: list(v) for k, v in importlib.metadata.packages_distributions().items()}
    with contextlib.suppress(OSError):  # best effort: a lost race costs one more scan
        store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store.parent, prefix=".distributions-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"key": key, "map": found}, handle)
        os.replace(tmp, store)
    return found
