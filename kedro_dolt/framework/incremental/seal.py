"""This user's seal on the memo rows it writes: an HMAC-SHA256 with a key kept in the user's
config directory (``$XDG_CONFIG_HOME/kedro-dolt/memo.key``, 0600 in a 0700 directory, made on
first use; ``KEDRO_DOLT_MEMO_KEY`` names another file). A row edited by hand no longer
carries a valid seal, so it is not trusted as this user's (see :mod:`.trust`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
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


def _key() -> bytes | None:
    """The key, made on first use; None when it cannot be read or made safely."""
    path = key_path()
    with _lock:
        if str(path) not in _keys:
            _keys[str(path)] = _read_or_make(path)
        return _keys[str(path)]


def _read_or_make(path: Path) -> bytes | None:
    if path.exists():
        return _read(path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _read(path)
    except OSError:
        return None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return _read(path)


def _read(path: Path) -> bytes | None:
    try:
        stat = path.stat()
        if stat.st_uid != os.getuid() or stat.st_mode & 0o077:
            return None  # a key others could read or write seals nothing
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return bytes.fromhex(text) if len(text) == 64 else None


def seal(row: dict[str, str]) -> str:
    """The seal of a memo row's content (every column but the seal); "" without a key."""
    key = _key()
    if key is None:
        return ""
    text = json.dumps(row, sort_keys=True)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def sealed(row: dict[str, str], found: object) -> bool:
    """Whether ``found`` is this user's seal of ``row``."""
    if not isinstance(found, str) or not found:
        return False
    expected = seal(row)
    return bool(expected) and hmac.compare_digest(expected, found)
