"""A content-addressed cache of committed table versions, on local disk.

A table version in Dolt never changes: ``dolt_hashof_table`` names its schema and rows. So
what a load read, or a save committed, for table hash *H* is valid for as long as anyone
asks for *H*. A load that finds a verified entry for the table hash of the commit it reads
decodes that instead of exporting the rows from Dolt; a save puts the frame it committed
there, so the next node's load of it is a hit.

An entry is one file: the rows as Parquet, then a trailer with the key it was written for,
the Parquet part's length and an HMAC-SHA256 of all three with this user's key (derived from
the one in :mod:`.user_key`). A file that is truncated, altered, written for another key, or
by anyone without the key, fails the check, is ignored and removed. Files are written under a
temporary name and renamed into place, so readers in other processes see a whole entry or
none; the newest entries are kept within a size bound (least recently used go first).

Only this user may write the cache: the directory must be this user's and writable by no one
else (made 0700 when missing, with the directories above it that were missing), and an entry
file must be this user's to be read at all. Otherwise (or without a key) the cache is off for
the process, with one warning that says why: loads and saves work as without it.

Settings (environment): ``KEDRO_DOLT_CACHE_DIR`` (default ``$XDG_CACHE_HOME/kedro-dolt/tables``,
else ``~/.cache/kedro-dolt/tables``) and ``KEDRO_DOLT_CACHE_SIZE`` (bytes, with an optional
``K``/``M``/``G`` suffix; default ``2G``; ``0`` turns the cache off).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import stat
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import user_key
from .schema import TableSchema

logger = logging.getLogger(__name__)

DIR_ENV = "KEDRO_DOLT_CACHE_DIR"
SIZE_ENV = "KEDRO_DOLT_CACHE_SIZE"
DEFAULT_SIZE = 2 * 1024**3
#: Eviction brings the cache down to this share of its bound, so it does not run per write.
LOW_WATER = 0.8

#: The entry format; part of every key, so entries of another format are misses.
_MAGIC = b"KDLC0002"
#: Part of every key: change it when a load would decode the same rows differently.
DECODE_VERSION = "2"
_TRAILER = struct.Struct("<32sQ32s8s")  # key digest, Parquet length, HMAC-SHA256, magic
_LENGTH = struct.Struct("<Q")
_SUFFIX = ".kdc"
#: What the key that authenticates entries is derived for (see :func:`.user_key.derived`).
KEY_PURPOSE = "load cache"
#: From this size an entry's MAC is checked in a thread while it is decoded.
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
        parts = [_MAGIC.decode(), DECODE_VERSION, self.table_hash, self.schema.ddl("t")]
        text = "\0".join(parts)
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
        self._checking = threading.Lock()
        #: The (device, inode) of the directory found to be this user's alone.
        self._checked: tuple[int, int] | None = None
        self._secret = b""
        self._refused = False

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
        """Turned on, and not found unsafe (see :meth:`_usable`)."""
        return self.max_bytes > 0 and not self._refused

    def _usable(self, create: bool) -> bool:
        """Whether the directory is there (made when ``create``), this user's, writable by
        no one else, and there is a key to authenticate entries. Checked again when the
        directory is another one (replaced); the first failure turns the cache off."""
        if not self.enabled:
            return False
        found: os.stat_result | None
        try:
            found = os.stat(self.root)
        except FileNotFoundError:
            if not create:
                return False
            found = _made_private(self.root)
        except OSError:
            return False
        if found is None or (found.st_dev, found.st_ino) == self._checked:
            return found is not None
        with self._checking:
            problem = _unsafe(self.root, found)
            if problem is None and not self._secret:
                self._secret = user_key.derived(KEY_PURPOSE) or b""
                if not self._secret:
                    problem = (
                        f"no key to authenticate its entries ({user_key.key_path()} cannot "
                        "be read or made as a file of this user's, mode 600)",
                        f"let kedro-dolt make it, or set {user_key.KEY_ENV} to a private file",
                    )
            if problem is not None:
                self._refused = True
                what, fix = problem
                _warn_once(f"kedro-dolt: {what}: the load cache is off. Fix: {fix}.")
                return False
            self._checked = (found.st_dev, found.st_ino)
        return True

    # -- reading ----------------------------------------------------------------------------

    def get(self, key: CacheKey, columns: list[str] | None = None) -> pa.Table | None:
        """The rows stored for ``key`` (only ``columns``, in that order), or ``None``. An
        entry that fails its check is removed."""
        if not self._usable(create=False):
            return None
        path = self.root / key.name
        data = _own_bytes(path)
        if data is None:
            return None
        framed = _framed(data, key)
        table = _decoded(*framed, self._secret, key, columns) if framed is not None else None
        if table is None:
            logger.warning(
                "kedro-dolt: ignoring a load-cache entry that fails its check (damaged, or "
                "not written with this user's key): %s",
                path,
            )
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: evicted last
        return table.select(columns) if columns is not None else table

    def has(self, key: CacheKey) -> bool:
        """Whether an entry for ``key`` is there (unchecked: :meth:`get` checks it), now
        marked recently used."""
        path = self.root / key.name
        try:
            if not self._usable(create=False) or os.lstat(path).st_uid != os.getuid():
                return False
            os.utime(path)
        except OSError:
            return False
        return True

    # -- writing ----------------------------------------------------------------------------

    def put(self, key: CacheKey, table: pa.Table) -> None:
        """Keep ``table`` for ``key``. Never raises: the cache only saves time."""
        if not self._usable(create=True):
            return
        try:
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="lz4", write_statistics=False)
            body = sink.getvalue().to_pybytes()
            if len(body) > self.max_bytes * (1 - LOW_WATER):
                return  # an entry that would evict most of the cache is not worth keeping
            tag = _tag(self._secret, key, body)
            trailer = _TRAILER.pack(key.digest, len(body), tag, _MAGIC)
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
                        info = entry.stat()
                    except OSError:
                        continue
                    if entry.name.startswith(".partial-"):
                        if info.st_mtime < time.time() - 3600:
                            with contextlib.suppress(OSError):
                                os.unlink(entry.path)
                        continue
                    if entry.name.endswith(_SUFFIX):
                        entries.append((info.st_mtime, info.st_size, entry.path))
                        total += info.st_size
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


def _made_private(root: Path) -> os.stat_result | None:
    """Make ``root`` and the directories above it that are missing, 0700 each."""
    missing = [root]
    while not missing[-1].parent.exists() and missing[-1].parent != missing[-1]:
        missing.append(missing[-1].parent)
    try:
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):  # (then checked as any other)
                os.mkdir(path, 0o700)
        return os.stat(root)
    except OSError:
        return None


def _unsafe(root: Path, found: os.stat_result) -> tuple[str, str] | None:
    """What makes the directory ``root`` (``found`` its status) not this user's alone, and
    the fix, if anything does."""
    where = f"{DIR_ENV}={root}"
    private = f"point {DIR_ENV} at a private directory (mode 700) of this user's"
    if not stat.S_ISDIR(found.st_mode):
        return f"{where} is not a directory", private
    if found.st_uid != os.getuid():
        owner = f"is owned by uid {found.st_uid}, not by this user (uid {os.getuid()})"
        return f"{where} {owner}", private
    if found.st_mode & 0o022:
        mode = stat.S_IMODE(found.st_mode)
        return f"{where} is writable by others (mode {mode:04o})", f"chmod 700 {root} or {private}"
    return None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def read_private(path: Path) -> bytes | None:
    """The content of ``path`` when only this user can have written it: a regular file of
    this user's (not a link) in a directory of this user's that others cannot write; else
    None (a file beside the cache that another user could plant is not believed)."""
    try:
        parent = os.stat(path.parent)
    except OSError:
        return None
    if _unsafe(path.parent, parent) is not None:
        return None
    return _own_bytes(path)


def _own_bytes(path: Path) -> bytes | None:
    """The content of the entry file ``path``: only a regular file of this user's (not a link
    to one) is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with open(fd, "rb", buffering=0, closefd=True) as handle:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != os.getuid():
            logger.warning(
                "kedro-dolt: ignoring load-cache entry %s: not a file of this user's (uid %d)",
                path,
                found.st_uid,
            )
            return None
        return handle.read()


def _tag(secret: bytes, key: CacheKey, body: bytes | memoryview) -> bytes:
    """The HMAC-SHA256 an entry of ``body`` for ``key`` carries: over the format, the key,
    the length and the Parquet part."""
    mac = hmac.new(secret, _MAGIC + key.digest + _LENGTH.pack(len(body)), hashlib.sha256)
    mac.update(body)  # (releases the GIL for big inputs)
    return mac.digest()


def _framed(data: bytes, key: CacheKey) -> tuple[memoryview, bytes] | None:
    """The Parquet part of an entry's bytes (not copied) and the MAC it must have, if the
    trailer is this format's and names ``key``."""
    if len(data) < _TRAILER.size:
        return None
    digest, length, tag, magic = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    body = memoryview(data)[: len(data) - _TRAILER.size]
    if magic != _MAGIC or digest != key.digest or length != len(body):
        return None
    return body, tag


def _decoded(
    body: memoryview, tag: bytes, secret: bytes, key: CacheKey, columns: list[str] | None
) -> pa.Table | None:
    """The rows of an entry's Parquet part, if its MAC is ``tag`` and Parquet reads it.

    hashlib and Parquet both release the GIL: a big entry's MAC is computed while it is
    decoded (~20 ms at 27 MB), and the rows are used only if it matches. (Only files of this
    user's, in a directory no one else can write, are decoded at all.)"""
    matches: list[bool] = []
    check = threading.Thread(
        target=lambda: matches.append(hmac.compare_digest(_tag(secret, key, body), tag))
    )
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
