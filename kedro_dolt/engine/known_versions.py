"""What this process knows of table versions: a table's hash and schema in a commit.

A commit never changes, so neither does a table in it: once a save made a version or a load
read one, a later load of that commit asks Dolt only which commit its ref names, and finds
the version (its key in :mod:`.load_cache`) here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .schema import TableSchema


class KnownVersions:
    """A table's hash and schema per (repository location, commit, table), bounded: the
    least recently used go first."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, str, str], tuple[str, TableSchema]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, location: str, commit: str, table: str) -> tuple[str, TableSchema] | None:
        key = (location, commit, table)
        with self._lock:
            found = self._known.get(key)
            if found is not None:
                self._known.move_to_end(key)
            return found

    def put(
        self, location: str, commit: str, table: str, table_hash: str, schema: TableSchema
    ) -> None:
        with self._lock:
            self._known[(location, commit, table)] = (table_hash, schema)
            self._known.move_to_end((location, commit, table))
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._known.clear()


#: The process's known table versions.
known_versions = KnownVersions()


__all__ = ["KnownVersions", "known_versions"]
