"""The version of a dataset as the memo records it, or None when it cannot be established.

* a :class:`DoltTableDataset`: ``dolt:<table hash>`` of the version a load would read now
  (``dolt_hashof_table``: equal hashes, equal schema and rows);
* a dataset with a local, unversioned ``filepath`` (a file or a directory): ``file:<sha256>``
  of its content, remembered by path, size and mtime as DVC does (in ``file-hashes.json``
  beside the load cache directory), so an unchanged file is not read again;
* ``parameters`` and ``params:...``: ``params:<sha256>`` of the value;
* anything else (memory, remote files, versioned files, APIs): None.
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

from ...datasets import DoltTableDataset
from ...engine import load_cache

_CHUNK = 1 << 20
_lock = threading.Lock()
_file_hashes: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256)
_loaded = False


def is_params(name: str) -> bool:
    return name == "parameters" or name.startswith("params:")


def params_version(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return "params:" + hashlib.sha256(text.encode()).hexdigest()


def dataset_version(dataset: Any) -> str | None:
    """The version of ``dataset`` now, or None (see the module docstring)."""
    if isinstance(dataset, DoltTableDataset):
        try:
            found = dataset.table_version()
        except DatasetError:
            return None
        return f"dolt:{found}" if found else None
    path = local_path(dataset)
    if path is None:
        return None
    digest = content_hash(path)
    return f"file:{digest}" if digest else None


def is_dolt(dataset: Any) -> bool:
    return isinstance(dataset, DoltTableDataset)


def local_path(dataset: Any) -> Path | None:
    """The local file or directory of an unversioned file dataset, else None."""
    filepath = getattr(dataset, "_filepath", None)
    if not isinstance(filepath, PurePosixPath | Path | str):
        return None
    if getattr(dataset, "_protocol", "file") not in ("file", None, ""):
        return None
    if getattr(dataset, "_version", None) is not None:  # versioned: which version is unknown
        return None
    return Path(str(filepath))


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


def _store() -> Path:
    return load_cache.shared().root.with_name("file-hashes.json")


def _load_known() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        known = json.loads(_store().read_text(encoding="utf-8"))
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
    """``dolt:0123456789...`` -> ``01234567`` for messages."""
    if not version:
        return "none"
    return version.split(":", 1)[-1][:8]


__all__ = [
    "content_hash",
    "dataset_version",
    "is_params",
    "local_path",
    "params_version",
    "save_known",
]
