"""The version of a dataset as the memo records it, or None when it cannot be established.

A version is ``<content>#cfg:<configuration>``: what the dataset holds now and how it is read
and written (its type and catalog entry: ``load_args``, ``save_args``, a table's key, a
file's separator...). The same content read with other ``load_args`` is another input; an
output saved with other ``save_args`` is another output.

The content:

* a :class:`DoltTableDataset`: ``dolt:<table hash>`` of the version a load would read now
  (``dolt_hashof_table``: equal hashes, equal schema and rows), after the pull a load would
  do when the dataset pulls from a remote;
* a dataset with a local ``filepath`` (a file or a directory): ``file:<sha256>`` of the
  content a load reads now: for a versioned dataset the latest saved version (or the one
  ``--load-versions`` pins). File hashes are remembered by path, size and mtime as DVC does
  (in ``file-hashes.json`` beside the load cache directory). A pickle also names the code of
  the classes it holds (``code.globals_fingerprint``): a changed method of a pickled project
  object is another input;
* a :class:`DoltSQLQueryDataset`: the hashes of the tables its query reads at its ref (the
  commit when it reads ``dolt_*`` system tables; None when it reads other versions);
* ``parameters`` and ``params:...``: ``params:<sha256>`` of the value;
* anything else (memory, remote files, APIs): None here (memory outputs get the version of how
  they are made, see :mod:`.chains`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import DatasetError

from ...datasets import DoltSQLQueryDataset, DoltTableDataset
from ...engine import load_cache
from .canonical import NotStable, stable_digest
from .pickled import pickle_refs

_CHUNK = 1 << 20
_lock = threading.Lock()
_file_hashes: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256)
_loaded = False
_PICKLE_TYPES = ("PickleDataset",)


def is_params(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


def params_version(value: Any) -> str:
    """The version of a params value; any value Kedro accepts (integer keys included)."""
    try:
        return "params:" + stable_digest(value)
    except NotStable:  # an object from a custom resolver: by its repr, as before
        return "params:" + hashlib.sha256(repr(value).encode()).hexdigest()


def dataset_version(dataset: Any) -> str | None:
    """The version of ``dataset`` now, or None (see the module docstring)."""
    content = content_version(dataset)
    if content is None:
        return None
    config = config_version(dataset)
    return None if config is None else f"{content}#cfg:{config}"


def content_version(dataset: Any) -> str | None:
    if isinstance(dataset, DoltSQLQueryDataset):
        try:
            found = dataset.query_version()
        except DatasetError:
            return None
        return None if found is None else "query:" + hashlib.sha256(found.encode()).hexdigest()
    if isinstance(dataset, DoltTableDataset):
        try:
            found = dataset.table_version(pull=True)
        except DatasetError:
            return None
        return f"dolt:{found}" if found else None
    path = local_path(dataset)
    if path is None:
        return None
    digest = content_hash(path)
    if digest is None:
        return None
    if type(dataset).__name__ in _PICKLE_TYPES:
        code = _pickled_code(path, digest)
        return None if code is None else f"file:{digest}+code:{code}"
    return f"file:{digest}"


def content_of(version: str | None) -> str | None:
    """The content part of a version (without its configuration)."""
    return version.split("#cfg:", 1)[0] if version else None


def config_version(dataset: Any) -> str | None:
    """A digest of the dataset's type and the arguments the catalog built it with: how it is
    read and written. Not where it is (the content's hash says what is there, and a project
    moved or cloned elsewhere holds the same data), nor its Kedro version (new each run), nor
    credentials (secrets); None when they have no stable encoding."""
    init = getattr(dataset, "_init_args", None)
    if not isinstance(init, dict):
        return None  # not built by AbstractDataset's constructor: unknown configuration
    config = {k: v for k, v in init.items() if k not in _NOT_CONFIG}
    kind = f"{type(dataset).__module__}.{type(dataset).__qualname__}"
    try:
        return stable_digest([kind, _plain(config)])
    except NotStable:
        return None


_NOT_CONFIG = frozenset({"version", "metadata", "credentials", "filepath", "path", "database"})


def _plain(value: Any) -> Any:
    """Paths as strings, so a PurePosixPath and a str of the same path are the same."""
    if isinstance(value, PurePosixPath | Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def is_dolt(dataset: Any) -> bool:
    return isinstance(dataset, DoltTableDataset)


def is_versioned_file(dataset: Any) -> bool:
    return local_path(dataset) is not None and getattr(dataset, "_version", None) is not None


def local_path(dataset: Any) -> Path | None:
    """The local file or directory a load of a file dataset reads now, else None (a remote
    file, no file, or a versioned dataset without any version yet)."""
    filepath = getattr(dataset, "_filepath", None)
    if not isinstance(filepath, PurePosixPath | Path | str):
        return None
    if getattr(dataset, "_protocol", "file") not in ("file", None, ""):
        return None
    if getattr(dataset, "_version", None) is None:
        return Path(str(filepath))
    try:
        # The latest version may be one this run saved: look again, not at Kedro's cache.
        dataset._cached_load_version = None
        return Path(str(dataset._get_load_path()))
    except Exception:  # no version saved yet: nothing to compare
        return None


def content_hash(path: Path) -> str | None:
    """sha256 of a file, or of a directory's relative paths and file hashes; None if missing."""
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            part = _file_hash(child)
            if part is None:
                return None
            digest.update(f"{child.relative_to(path).as_posix()}\0{part}\n".encode())
        return digest.hexdigest()
    return _file_hash(path)


def _pickled_code(path: Path, digest: str) -> str | None:
    """The fingerprint of the code a pickle's objects run (their classes and functions)."""
    from .code import globals_fingerprint

    refs = pickle_refs(path, digest)
    if refs is None:
        return None
    found, _ = globals_fingerprint(refs)
    return found


def _store() -> Path:
    return load_cache.shared().root.with_name("file-hashes.json")


def _load_known() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        # Only a file no other user could have planted: it decides what counts as unchanged.
        known = json.loads(load_cache.read_private(_store()) or b"{}")
        _file_hashes.update({k: (int(v[0]), int(v[1]), str(v[2])) for k, v in known.items()})
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        pass  # no store yet, or an unreadable one: hash the files again


def save_known() -> None:
    """Keep the file hashes for the next run (atomic; a lost race only costs a re-hash)."""
    with _lock:
        if not _file_hashes:
            return
        data = json.dumps({k: list(v) for k, v in _file_hashes.items()})
    store = _store()
    with contextlib.suppress(OSError):
        store.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store.parent, prefix=".file-hashes-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.replace(tmp, store)


def _file_hash(path: Path) -> str | None:
    try:
        stat = path.stat()
        key = str(path.resolve())
    except OSError:
        return None
    with _lock:
        _load_known()
        known = _file_hashes.get(key)
    if known and known[:2] == (stat.st_size, stat.st_mtime_ns):
        return known[2]
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    with _lock:
        _file_hashes[key] = (stat.st_size, stat.st_mtime_ns, digest.hexdigest())
    return digest.hexdigest()


def short(version: str | None) -> str:
    """``dolt:0123456789...#cfg:...`` -> ``01234567`` for messages."""
    if not version:
        return "none"
    return (content_of(version) or "").split(":", 1)[-1][:8]


__all__ = [
    "config_version",
    "content_hash",
    "content_of",
    "content_version",
    "dataset_version",
    "is_params",
    "local_path",
    "params_version",
    "save_known",
]
