"""Copies of earlier unversioned file outputs, by content, so a node whose inputs were put
back can have its file outputs restored instead of running (as DVC's run cache does).

One entry per sha256 (a file, or a directory tree) in ``outputs/`` beside the load cache
directory (``$XDG_CACHE_HOME/kedro-dolt/outputs`` by default), bounded by
``KEDRO_DOLT_OUTPUT_STORE_SIZE`` (default ``1G``; ``0`` keeps nothing): the least recently
used entries go first, and an output larger than the bound is not kept. A restore copies the
entry next to the output, checks its hash and renames it into place: an entry changed by
anyone is never restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from ...engine import load_cache

SIZE_ENV = "KEDRO_DOLT_OUTPUT_STORE_SIZE"
_DEFAULT_SIZE = "1G"


def root() -> Path:
    return load_cache.shared().root.with_name("outputs")


def limit() -> int:
    try:
        return load_cache.parse_size(os.environ.get(SIZE_ENV) or _DEFAULT_SIZE)
    except ValueError:
        return load_cache.parse_size(_DEFAULT_SIZE)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def has(digest: str) -> bool:
    return (root() / digest).exists()


def keep(path: Path, digest: str) -> None:
    """Keep a copy of ``path`` (content ``digest``); best effort, never fails the run."""
    entry = root() / digest
    with contextlib.suppress(OSError):
        if entry.exists():
            os.utime(entry)  # recently used
            return
        size = _size(path)
        if size > limit():
            return
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = entry.parent / f".tmp-{uuid.uuid4().hex}"
        if path.is_dir():
            shutil.copytree(path, tmp)
        else:
            shutil.copyfile(path, tmp)
        try:
            os.rename(tmp, entry)
        except OSError:  # another process kept the same content first
            _remove(tmp)
        _evict()


def _evict() -> None:
    entries = [p for p in root().iterdir() if not p.name.startswith(".")]
    entries.sort(key=lambda p: p.stat().st_mtime)
    total = sum(_size(p) for p in entries)
    bound = limit()
    while entries and total > bound:
        oldest = entries.pop(0)
        total -= _size(oldest)
        _remove(oldest)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def restore(digest: str, dest: Path, content_hash: object) -> bool:
    """Put the kept copy of ``digest`` at ``dest``; False when there is none or it does not
    hash to ``digest`` (``content_hash``: the hashing function of :mod:`.versions`)."""
    entry = root() / digest
    if not entry.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.restore-"))
    staged = tmp / dest.name
    try:
        if entry.is_dir():
            shutil.copytree(entry, staged)
        else:
            shutil.copyfile(entry, staged)
        if content_hash(staged) != digest:  # type: ignore[operator]
            _remove(entry)  # changed since it was kept: useless
            return False
        if dest.is_dir():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex}"
            os.rename(dest, old)
            os.rename(staged, dest)
            _remove(old)
        else:
            os.replace(staged, dest)
        os.utime(entry)
        return True
    except OSError:
        return False
    finally:
        _remove(tmp)
