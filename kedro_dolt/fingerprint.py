"""Row fingerprints: what makes an unchanged or slightly changed save cost what changed.

After each save kedro-dolt keeps, next to the repository, a 64-bit hash of every saved row (and
the row's primary key), in a file named after Dolt's content hash of the resulting table
(``dolt_hashof_table``: schema and rows). The next save of that table looks up the file for
the table's hash at the branch head: if it is there, the head holds exactly the rows the file
describes, whoever made that commit, so comparing hashes tells which rows were added, changed
or deleted without reading the table. When someone else changed the table (a merge, a plain
``dolt sql`` update), its hash has no file and the save writes the whole table.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import TableSchema, unencodable

#: Where the fingerprints live, inside the repository directory (beside, not in, ``.dolt``).
ROW_HASH = "__kedro_dolt_row_hash__"
#: Fingerprint files kept per table (one per recent version, so a revert is cheap too).
KEEP = 4
#: Above this share of changed rows a full rewrite is about as fast as a delta.
MAX_DELTA_SHARE = 0.5
_DDL_KEY = b"kedro_dolt_ddl"


#: Rows hashed at a time: hashing text makes temporary copies, so bound them.
HASH_CHUNK_ROWS = 100_000


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One uint64 per row over every column's value (vectorised; index ignored). A row's
    hash depends on that row only, so hashing in chunks gives the same values."""
    hashes = np.empty(len(frame), dtype="uint64")
    for start in range(0, len(frame), HASH_CHUNK_ROWS):
        part = frame.iloc[start : start + HASH_CHUNK_ROWS]
        hashes[start : start + len(part)] = pd.util.hash_pandas_object(part, index=False)
    return hashes


@dataclass(frozen=True)
class Fingerprint:
    """The saved rows of one version of a table: key columns plus each row's hash."""

    ddl: str
    keys: pd.DataFrame  # key columns (empty frame for keyless tables)
    hashes: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, schema: TableSchema, ddl: str) -> Fingerprint:
        keys = frame[list(schema.primary_key)].reset_index(drop=True)
        try:
            return cls(ddl, keys, row_hashes(frame))
        except UnicodeEncodeError as exc:  # hashing encodes text as UTF-8
            raise unencodable(frame, exc) from exc

    @classmethod
    @contextlib.contextmanager
    def hashing(cls, frame: pd.DataFrame, schema: TableSchema, ddl: str) -> Iterator[Hashing]:
        """Compute :meth:`of` in a thread while the ``with`` body runs (a save that needs the
        hashes only afterwards); on exit ``.fingerprint`` holds it, or ``None`` when hashing
        failed (a fingerprint only saves time: the next save then writes the whole table)."""
        job = Hashing()

        def run() -> None:
            with contextlib.suppress(Exception):
                job.fingerprint = cls.of(frame, schema, ddl)

        thread = threading.Thread(target=run, name="kedro-dolt-hashing", daemon=True)
        thread.start()
        try:
            yield job
        finally:
            thread.join()

    def extended(self, added: Fingerprint) -> Fingerprint:
        """After an append of ``added``'s rows."""
        keys = pd.concat([self.keys, added.keys], ignore_index=True)
        return Fingerprint(self.ddl, keys, np.concatenate([self.hashes, added.hashes]))

    def upserted(self, new: Fingerprint) -> Fingerprint:
        """After an upsert of ``new``'s rows (rows with their keys are replaced)."""
        replaced = self.keys.merge(new.keys.drop_duplicates(), how="left", indicator=True)
        kept = (replaced["_merge"] == "left_only").to_numpy()
        keys = pd.concat([self.keys[kept], new.keys], ignore_index=True)
        return Fingerprint(self.ddl, keys, np.concatenate([self.hashes[kept], new.hashes]))

    def same_rows(self, other: Fingerprint) -> bool:
        """Equal as multisets of rows (the key is part of each row's hash)."""
        return (
            self.ddl == other.ddl
            and len(self.hashes) == len(other.hashes)
            and np.array_equal(np.sort(self.hashes), np.sort(other.hashes))
        )


class Hashing:
    """The result of :meth:`Fingerprint.hashing`, set when its ``with`` block ends."""

    fingerprint: Fingerprint | None = None


@dataclass(frozen=True)
class Delta:
    """Rows to write (positions in the new frame) and keys to delete, for a keyed table."""

    upserts: np.ndarray  # positions in the new frame of added or changed rows
    deletes: pd.DataFrame  # key columns of rows that are gone

    @property
    def size(self) -> int:
        return len(self.upserts) + len(self.deletes)


def delta(old: Fingerprint, new: Fingerprint) -> Delta | None:
    """How to turn ``old``'s rows into ``new``'s by key, or ``None`` when a full write is the
    better (or only) way: another schema, no primary key, duplicate keys, a large change."""
    if old.ddl != new.ddl or new.keys.columns.empty:
        return None
    if new.keys.duplicated().any():
        return None  # a full write reports the duplicate keys
    upserts = np.flatnonzero(~np.isin(new.hashes, old.hashes))
    gone = old.keys[~np.isin(old.hashes, new.hashes)]
    if len(gone):
        kept = new.keys.iloc[upserts]
        marked = gone.merge(kept.drop_duplicates(), how="left", indicator=True)
        gone = marked.loc[marked["_merge"] == "left_only", list(gone.columns)]
    change = Delta(upserts, gone.reset_index(drop=True))
    if change.size > MAX_DELTA_SHARE * max(len(old.hashes), len(new.hashes), 1):
        return None
    return change


class FingerprintStore:
    """The fingerprint files of one repository, per table, named by Dolt's table hash."""

    def __init__(self, cache_dir: Path) -> None:
        """``cache_dir``: kedro-dolt's cache of one database (``<repository>/.kedro-dolt``
        for a local repository)."""
        self.root = cache_dir / "rows"

    def _dir(self, table: str) -> Path:
        return self.root / table

    def latest(self, table: str) -> tuple[str, Fingerprint] | None:
        """The most recently written or used fingerprint of ``table`` and its table hash."""
        folder = self._dir(table)
        try:
            files = sorted(folder.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return None
        for path in reversed(files):
            found = self.load(table, path.stem)
            if found is not None:
                return path.stem, found
        return None

    def load(self, table: str, table_hash: str | None) -> Fingerprint | None:
        if not table_hash:
            return None
        path = self._dir(table) / f"{table_hash}.parquet"
        try:
            stored = pq.read_table(path)
        except (OSError, pa.ArrowInvalid):
            return None  # missing or unreadable: the save writes the whole table
        ddl = (stored.schema.metadata or {}).get(_DDL_KEY, b"").decode("utf-8")
        frame = stored.to_pandas()
        hashes = frame.pop(ROW_HASH).to_numpy(dtype="uint64")
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used: kept longest
        return Fingerprint(ddl, frame, hashes)

    def save(self, table: str, table_hash: str, fingerprint: Fingerprint) -> None:
        """Write atomically (a reader never sees half a file), then keep the newest few."""
        folder = self._dir(table)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = fingerprint.keys.assign(**{ROW_HASH: fingerprint.hashes})
            arrow = pa.Table.from_pandas(data, preserve_index=False)
            arrow = arrow.replace_schema_metadata({_DDL_KEY: fingerprint.ddl.encode("utf-8")})
            partial = folder / f".{table_hash}.{os.getpid()}.tmp"
            pq.write_table(arrow, partial)
            os.replace(partial, folder / f"{table_hash}.parquet")
            files = sorted(folder.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
            for old in files[:-KEEP]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full disk costs speed only, never correctness
