"""Row fingerprints: what makes an unchanged or slightly changed save cost what changed.

After each save kedro-dolt keeps, next to the repository, a 64-bit hash of every saved row, the
row's null pattern and its primary key, in a file named after Dolt's content hash of the
resulting table (``dolt_hashof_table``: schema and rows). The next save of that table looks up
the file for the table's hash at the branch head: if it is there, the head holds exactly the
rows the file describes, whoever made that commit, so comparing hashes tells which rows were
added, changed or deleted without reading the table. When someone else changed the table (a
merge, a plain ``dolt sql`` update), its hash has no file and the save writes the whole table.

Two rules keep that exact:

* rows are hashed **as Dolt stores them** (:mod:`.validate` makes the frame
  so first): values by their bits per SQL type, text by its UTF-8, and whether each value is
  NULL as a separate bit pattern, so no value can hash like a NULL;
* a fingerprint is written only under the table hash it describes (the engine checks which
  table the save built on before it keeps a fingerprint derived from an older one).

Keys and hashes are held by position (``k0``, ``k1``, ..., ``h``, ``n``): no user column name
ever meets an internal one.
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

from .codec import unencodable
from .schema import Column, TableSchema

#: Fingerprint files kept per table (one per recent version, so a revert is cheap too).
KEEP = 4
#: Above this share of changed rows a full rewrite is about as fast as a delta.
MAX_DELTA_SHARE = 0.5
#: Rows hashed at a time: hashing text makes temporary copies, so bound them.
HASH_CHUNK_ROWS = 100_000
#: The file format; files of another version are not read (the save writes in full once).
FORMAT = b"2"
_DDL_KEY = b"kedro_dolt_ddl"
_FORMAT_KEY = b"kedro_dolt_fingerprint"
_HASH, _NULLS = "h", "n"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_INTEGERS = ("tinyint", "smallint", "mediumint", "int", "bigint")


def _base_type(sql_type: str) -> str:
    """``bigint`` of ``bigint unsigned``, ``varchar`` of ``varchar(1024)``."""
    return sql_type.split("(")[0].split()[0]


def key_name(position: int) -> str:
    """The internal name of the key column at ``position`` (never a user's name)."""
    return f"k{position}"


def canonical(series: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray]:
    """``(values, missing)``: the column as Dolt stores it, one comparable value per row
    (integers and float bits as uint64, datetimes as UTC microseconds, text as ``str``);
    missing values are 0 or ``""`` there, and flagged in ``missing``."""
    missing = series.isna().to_numpy(dtype=bool)
    sql = column.sql_type
    if sql == "tinyint(1)":
        values = series.to_numpy(dtype="bool", na_value=False).astype("uint64")
    elif sql in ("double", "float"):
        floats = series.to_numpy(dtype="float64", na_value=0.0)
        values = np.where(missing, 0.0, floats).view("uint64")
    elif sql.endswith("unsigned"):
        values = series.to_numpy(dtype="uint64", na_value=0)
    elif _base_type(sql) in _INTEGERS:
        values = series.to_numpy(dtype="int64", na_value=0).view("uint64")
    elif sql == "datetime(6)":
        stamps = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz else series
        micros = stamps.to_numpy(dtype="datetime64[us]").view("int64")
        values = np.where(missing, 0, micros).view("uint64")
    else:
        values = series.to_numpy(dtype=object, na_value="")
    return values, missing


def key_columns(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The primary key of every row, as stored, under the internal names ``k0``, ``k1``..."""
    by_name = {c.name: c for c in schema.columns}
    return pd.DataFrame(
        {
            key_name(i): canonical(frame[name], by_name[name])[0]
            for i, name in enumerate(schema.primary_key)
        },
        index=pd.RangeIndex(len(frame)),
    )


def key_frame(keys: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Stored key values (:func:`key_columns`' canonical form, columns named as ``schema``'s
    key columns) back as values of the columns' dtypes, to write them (a delta's deletes)."""
    out = {}
    for column in schema.columns:
        values = keys[column.name].to_numpy()
        if column.sql_type == "datetime(6)":
            out[column.name] = pd.Series(values.view("int64").astype("datetime64[us]"))
        elif column.sql_type in ("double", "float"):
            out[column.name] = pd.Series(values.astype("uint64").view("float64"))
        elif column.sql_type == "tinyint(1)":
            out[column.name] = pd.Series(values.astype(bool))
        elif _base_type(column.sql_type) in _INTEGERS:
            kind = "uint64" if column.sql_type.endswith("unsigned") else "int64"
            out[column.name] = pd.Series(values.astype("uint64").view(kind))
        else:
            out[column.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(out)


def key_index(keys: pd.DataFrame) -> pd.Index:
    """An index of the key tuples, for exact membership tests."""
    if keys.shape[1] == 1:
        return pd.Index(keys.iloc[:, 0])
    return pd.MultiIndex.from_frame(keys)


def _column_hash(values: np.ndarray) -> np.ndarray:
    hashed: np.ndarray = pd.util.hash_array(values, categorize=False)
    return hashed


def row_hashes(frame: pd.DataFrame, schema: TableSchema) -> tuple[np.ndarray, np.ndarray]:
    """``(hashes, nulls)`` per row: a 64-bit hash of the row's stored values, and its null
    pattern (bit ``j`` set when column ``j`` is NULL; hashed when there are more than 64
    columns). A row's result depends on that row only, so chunks give the same values."""
    rows = len(frame)
    hashes, nulls = np.empty(rows, dtype="uint64"), np.zeros(rows, dtype="uint64")
    for start in range(0, rows, HASH_CHUNK_ROWS):
        part = frame.iloc[start : start + HASH_CHUNK_ROWS]
        acc = np.full(len(part), 0x345678, dtype="uint64")
        pattern = np.zeros(len(part), dtype="uint64")
        wide = len(schema.columns) > 64
        with np.errstate(over="ignore"):
            for j, column in enumerate(schema.columns):
                values, missing = canonical(part[column.name], column)
                acc = (acc ^ _column_hash(values)) * np.uint64(1000003 + 2 * j)
                if wide:
                    pattern = (pattern ^ missing.astype("uint64")) * _MIX + np.uint64(j)
                else:
                    pattern |= missing.astype("uint64") << np.uint64(j)
        hashes[start : start + len(part)] = acc
        nulls[start : start + len(part)] = pattern
    return hashes, nulls


def _pairs(fingerprint: Fingerprint) -> np.ndarray:
    both = np.stack([fingerprint.hashes, fingerprint.nulls], axis=1)
    return np.ascontiguousarray(both).view("V16").ravel()


def _ids_of_both(a: Fingerprint, b: Fingerprint) -> tuple[np.ndarray, np.ndarray]:
    """One comparable value per row of ``a`` and ``b``: the hash alone when no row of
    either has a NULL, else the (hash, null pattern) pair, so that a row with a NULL never
    equals one without."""
    if not a.nulls.any() and not b.nulls.any():
        return a.hashes, b.hashes
    return _pairs(a), _pairs(b)


@dataclass(frozen=True)
class Fingerprint:
    """The saved rows of one version of a table: keys, each row's hash and null pattern."""

    ddl: str
    keys: pd.DataFrame  # key columns k0, k1, ... as stored (no columns for keyless tables)
    hashes: np.ndarray
    nulls: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, schema: TableSchema, ddl: str) -> Fingerprint:
        """Of ``frame`` as it is stored (see :func:`kedro_dolt.engine.validate.stored`)."""
        try:
            hashes, nulls = row_hashes(frame, schema)
        except UnicodeEncodeError as exc:  # hashing encodes text as UTF-8
            raise unencodable(frame, exc) from exc
        return cls(ddl, key_columns(frame, schema), hashes, nulls)

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
        return Fingerprint(
            self.ddl,
            pd.concat([self.keys, added.keys], ignore_index=True),
            np.concatenate([self.hashes, added.hashes]),
            np.concatenate([self.nulls, added.nulls]),
        )

    def upserted(self, new: Fingerprint) -> Fingerprint:
        """After an upsert of ``new``'s rows (rows with their keys are replaced)."""
        kept = ~key_index(self.keys).isin(key_index(new.keys))
        return Fingerprint(
            self.ddl,
            pd.concat([self.keys[kept], new.keys], ignore_index=True),
            np.concatenate([self.hashes[kept], new.hashes]),
            np.concatenate([self.nulls[kept], new.nulls]),
        )

    def same_rows(self, other: Fingerprint) -> bool:
        """Equal as multisets of rows (the key is part of each row's hash)."""
        if self.ddl != other.ddl or len(self.hashes) != len(other.hashes):
            return False
        mine, theirs = _ids_of_both(self, other)
        return bool(np.array_equal(np.sort(mine), np.sort(theirs)))


class Hashing:
    """The result of :meth:`Fingerprint.hashing`, set when its ``with`` block ends."""

    fingerprint: Fingerprint | None = None


@dataclass(frozen=True)
class Delta:
    """Rows to write (positions in the new frame) and keys to delete, for a keyed table."""

    upserts: np.ndarray  # positions in the new frame of added or changed rows
    deletes: pd.DataFrame  # key columns (k0, k1, ...) of rows that are gone

    @property
    def size(self) -> int:
        return len(self.upserts) + len(self.deletes)


def delta(old: Fingerprint, new: Fingerprint) -> Delta | None:
    """How to turn ``old``'s rows into ``new``'s by key, or ``None`` when a full write is the
    better (or only) way: another schema, no primary key, a large change. (Keys are unique:
    the engine refuses a frame with a repeated key before it plans anything.)"""
    if old.ddl != new.ddl or new.keys.columns.empty:
        return None
    old_ids, new_ids = _ids_of_both(old, new)
    upserts = np.flatnonzero(~np.isin(new_ids, old_ids))
    gone = old.keys[~np.isin(old_ids, new_ids)]
    if len(gone):  # a changed row is replaced by its upsert, not deleted
        gone = gone[~key_index(gone).isin(key_index(new.keys.iloc[upserts]))]
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
        """The fingerprint of ``table`` at ``table_hash``; ``None`` when there is none, or it
        is unreadable, truncated or of another format (the save then writes the table)."""
        if not table_hash:
            return None
        path = self._dir(table) / f"{table_hash}.parquet"
        try:
            stored = pq.read_table(path)
        except (OSError, pa.ArrowInvalid):
            return None
        meta = stored.schema.metadata or {}
        names = stored.column_names
        if meta.get(_FORMAT_KEY) != FORMAT or names[-2:] != [_HASH, _NULLS]:
            return None
        if names[:-2] != [key_name(i) for i in range(len(names) - 2)]:
            return None
        frame = stored.to_pandas()
        hashes = frame.pop(_HASH).to_numpy(dtype="uint64")
        nulls = frame.pop(_NULLS).to_numpy(dtype="uint64")
        with contextlib.suppress(OSError):
            os.utime(path)  # most recently used: kept longest
        return Fingerprint(meta.get(_DDL_KEY, b"").decode("utf-8"), frame, hashes, nulls)

    def save(self, table: str, table_hash: str, fingerprint: Fingerprint) -> None:
        """Write atomically (a reader never sees half a file), then keep the newest few."""
        folder = self._dir(table)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            data = fingerprint.keys.assign(**{_HASH: fingerprint.hashes, _NULLS: fingerprint.nulls})
            arrow = pa.Table.from_pandas(data, preserve_index=False)
            arrow = arrow.replace_schema_metadata(
                {_DDL_KEY: fingerprint.ddl.encode("utf-8"), _FORMAT_KEY: FORMAT}
            )
            partial = folder / f".{table_hash}.{os.getpid()}.{threading.get_ident()}.tmp"
            pq.write_table(arrow, partial)
            os.replace(partial, folder / f"{table_hash}.parquet")
            files = sorted(folder.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
            for old in files[:-KEEP]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full disk costs speed only, never correctness
