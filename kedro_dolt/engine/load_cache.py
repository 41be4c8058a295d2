"""A content-addressed cache of committed table versions, on local disk.

A table version in Dolt never changes: ``dolt_hashof_table`` names its schema and rows. So
what a load read, or a save committed, for table hash *H* is valid for as long as anyone
asks for *H*. A load that finds a verified entry for the table hash of the commit it reads
decodes that instead of exporting the rows from Dolt; a save puts the frame it committed
there, so the next node's load of it is a hit.

An entry is one file: the rows as Parquet, then a trailer with the key it was written for,
the Parquet part's length and its CRC-32. A file that is truncated, altered, or written for
another key (or by anything but this module) fails the check, is ignored and removed. Files
are written under a temporary name and renamed into place, so readers in other processes
see a whole entry or none; the newest entries are kept within a size bound (least recently
used go first).

Settings (environment): ``KEDRO_DOLT_CACHE_DIR`` (default ``$XDG_CACHE_HOME/kedro-dolt/tables``,
else ``~/.cache/kedro-dolt/tables``) and ``KEDRO_DOLT_CACHE_SIZE`` (bytes, with an optional
``K``/``M``/``G`` suffix; default ``2G``; ``0`` turns the cache off).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import TableSchema

logger = logging.getLogger(__name__)

DIR_ENV = "KEDRO_DOLT_CACHE_DIR"
SIZE_ENV = "KEDRO_DOLT_CACHE_SIZE"
DEFAULT_SIZE = 2 * 1024**3
#: Eviction brings the cache down to this share of its bound, so it does not run per write.
LOW_WATER = 0.8

_MAGIC = b"KDLC0001"
#: Part of every key: change it when a load would decode the same rows differently.
DECODE_VERSION = "1"
_TRAILER = struct.Struct("<32sQI8s")  # key digest, Parquet length, CRC-32, magic
_SUFFIX = ".kdc"
#: From this size an entry's CRC is checked in a thread while it is decoded.
_PARALLEL_CHECK = 1 << 20
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """``"512M"`` -> bytes (``K``/``M``/``G``/``T``, optionally followed by ``B``/``iB``)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if found is None:
        raise ValueError(f"{SIZE_ENV}={text!r} is not a size (e.g. 0, 500M, 2G).")
    return int(float(found.group(1)) * _UNITS[found.group(2)])


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kedro-dolt" / "tables"


@dataclass(frozen=True)
class CacheKey:
    """What an entry holds: the table version (Dolt's table hash) read with ``schema``, as
    this version of the codec decodes it."""

    table_hash: str
    schema: TableSchema

    @property
    def digest(self) -> bytes:
        text = "\0".join([DECODE_VERSION, self.table_hash, self.schema.ddl("t")])
        return hashlib.sha256(text.encode("utf-8")).digest()

    @property
    def name(self) -> str:
        return self.digest.hex() + _SUFFIX


class LoadCache:
    """The cache at ``root``, holding at most about ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._evicting = threading.Lock()

    @classmethod
    def from_environment(cls) -> LoadCache:
        size = os.environ.get(SIZE_ENV)
        try:
            max_bytes = DEFAULT_SIZE if size is None else parse_size(size)
        except ValueError as exc:
            logger.warning("%s Using the default (2G).", exc)
            max_bytes = DEFAULT_SIZE
        root = os.environ.get(DIR_ENV)
        return cls(Path(root).expanduser() if root else default_dir(), max_bytes)

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    # -- reading ----------------------------------------------------------------------------

    def get(self, key: CacheKey, columns: list[str] | None = None) -> pa.Table | None:
        """The rows stored for ``key`` (only ``columns``, in that order), or ``None``. An
        entry that fails its check is removed."""
        if not self.enabled:
            return None
        path = self.root / key.name
        try:
            data = path.read_bytes()
        except OSError:
            return None
        framed = _framed(data, key)
        table = _decoded(*framed, columns) if framed is not None else None
        if table is None:
            logger.warning("kedro-dolt: ignoring a damaged load-cache entry %s", path)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return table.select(columns) if columns is not None else table

    def has(self, key: CacheKey) -> bool:
        """Whether an entry for ``key`` is there (unchecked: :meth:`get` checks it), now
        marked recently used."""
        try:
            os.utime(self.root / key.name)
        except OSError:
            return False
        return True

    # -- writing ----------------------------------------------------------------------------

    def put(self, key: CacheKey, table: pa.Table) -> None:
        """Keep ``table`` for ``key``. Never raises: the cache only saves time."""
        if not self.enabled:
            return
        try:
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="lz4", write_statistics=False)
            body = sink.getvalue().to_pybytes()
            if len(body) > self.max_bytes * (1 - LOW_WATER):
                return  # an entry that would evict most of the cache is not worth keeping
            trailer = _TRAILER.pack(key.digest, len(body), zlib.crc32(body), _MAGIC)
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, partial = tempfile.mkstemp(dir=self.root, prefix=".partial-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(body)
                    out.write(trailer)
                os.replace(partial, self.root / key.name)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                raise
        except Exception as exc:  # a type Parquet cannot hold, a full disk: no entry
            logger.debug("kedro-dolt: no load-cache entry for %s: %s", key.table_hash, exc)
            return
        self._evict()

    def _evict(self) -> None:
        """Remove the least recently used entries while the cache is over its bound (and
        partial files a killed writer left, once they are old)."""
        if not self._evicting.acquire(blocking=False):
            return
        try:
            entries = []
            total = 0
            with os.scandir(self.root) as found:
                for entry in found:
                    try:
                        stat = entry.stat()
                    except OSError:
                        continue
                    if entry.name.startswith(".partial-"):
                        if stat.st_mtime < time.time() - 3600:
                            with contextlib.suppress(OSError):
                                os.unlink(entry.path)
                        continue
                    if entry.name.endswith(_SUFFIX):
                        entries.append((stat.st_mtime, stat.st_size, entry.path))
                        total += stat.st_size
            if total <= self.max_bytes:
                return
            for _, size, path in sorted(entries):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                total -= size
                if total <= self.max_bytes * LOW_WATER:
                    break
        except OSError:
            pass
        finally:
            self._evicting.release()

    def clear(self) -> None:
        with contextlib.suppress(OSError), os.scandir(self.root) as found:
            for entry in found:
                if entry.name.endswith(_SUFFIX) or entry.name.startswith(".partial-"):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _framed(data: bytes, key: CacheKey) -> tuple[memoryview, int] | None:
    """The Parquet part of an entry's bytes (not copied) and the CRC-32 it must have, if the
    trailer is this module's and names ``key``."""
    if len(data) < _TRAILER.size:
        return None
    digest, length, crc, magic = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    body = memoryview(data)[: len(data) - _TRAILER.size]
    if magic != _MAGIC or digest != key.digest or length != len(body):
        return None
    return body, crc


def _decoded(body: memoryview, crc: int, columns: list[str] | None) -> pa.Table | None:
    """The rows of an entry's Parquet part, if its CRC-32 is ``crc`` and Parquet reads it.

    zlib and Parquet both release the GIL: a big entry's CRC is computed while it is decoded
    (13 ms at 27 MB), and the rows are used only if it matches."""
    matches: list[bool] = []
    check = threading.Thread(target=lambda: matches.append(zlib.crc32(body) == crc))
    parallel = len(body) >= _PARALLEL_CHECK
    if parallel:
        check.start()
    else:
        check.run()
    try:
        table = pq.read_table(pa.py_buffer(body), columns=columns)
    except (pa.ArrowException, OSError, ValueError, KeyError):
        table = None
    finally:
        if parallel:
            check.join()
    return table if matches == [True] else None


_shared: LoadCache | None = None
_shared_settings: tuple[str | None, str | None] | None = None


def shared() -> LoadCache:
    """The process's cache, as the environment sets it now."""
    global _shared, _shared_settings
    settings = (os.environ.get(DIR_ENV), os.environ.get(SIZE_ENV))
    if _shared is None or settings != _shared_settings:
        _shared, _shared_settings = LoadCache.from_environment(), settings
    return _shared


__all__ = ["CacheKey", "LoadCache", "parse_size", "shared"]
