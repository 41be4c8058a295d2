"""This user's secret: 32 random bytes kept in the user's config directory
(``$XDG_CONFIG_HOME/kedro-dolt/memo.key``, else ``~/.config/...``; 0600 in a 0700 directory,
made on first use; ``KEDRO_DOLT_MEMO_KEY`` names another file). The same file, and the same
rules, as the key that seals incremental memos (``framework.incremental.seal``): a key file
another user owns, or others may read or write, is no key.

Each use takes its own key derived from it (:func:`derived`), so what one use publishes (a
memo's seal is stored in Dolt) never is another's key.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import threading
from pathlib import Path

KEY_ENV = "KEDRO_DOLT_MEMO_KEY"
_lock = threading.Lock()
_keys: dict[str, bytes | None] = {}


def key_path() -> Path:
    named = os.environ.get(KEY_ENV)
    if named:
        return Path(named)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "kedro-dolt" / "memo.key"


def secret() -> bytes | None:
    """The user's secret, made on first use; None when it cannot be read or made safely."""
    path = key_path()
    with _lock:
        if str(path) not in _keys:
            _keys[str(path)] = _read(path) if path.exists() else _make(path)
        return _keys[str(path)]


def derived(purpose: str) -> bytes | None:
    """The key for ``purpose`` (a fixed name such as ``"load cache"``), or None."""
    found = secret()
    if found is None:
        return None
    return hmac.new(found, b"kedro-dolt key: " + purpose.encode(), hashlib.sha256).digest()


def _make(path: Path) -> bytes | None:
    """Write a new key whole, then link it into place: a reader in another process sees the
    whole key or none, and of two processes making it at once, the first one's wins."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # 0600
    except OSError:
        return None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(partial, path)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)
    return _read(path)


def _read(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        found = os.fstat(fd)
        if found.st_uid != os.getuid() or found.st_mode & 0o077 or not stat.S_ISREG(found.st_mode):
            return None  # a key others could read or write authenticates nothing
        text = os.read(fd, 256).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    try:
        return bytes.fromhex(text) if len(text) == 64 else None
    except ValueError:
        return None


__all__ = ["KEY_ENV", "derived", "key_path", "secret"]
