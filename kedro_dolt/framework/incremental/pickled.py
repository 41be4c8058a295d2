"""Which classes and functions a pickle file's objects are made of, read from its opcodes
without unpickling it (nothing in the file runs). A pickled model's methods are code the
consumer runs: their fingerprint is part of the file's version."""

from __future__ import annotations

import _compat_pickle
import pickletools
import threading
from pathlib import Path

_lock = threading.Lock()
_known: dict[str, list[tuple[str, str]] | None] = {}  # content sha256 -> refs
_STRINGS = {
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "SHORT_BINSTRING",
    "BINSTRING",
    "STRING",
}
_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}


def pickle_refs(path: Path, digest: str) -> list[tuple[str, str]] | None:
    """``(module, qualname)`` of every global the pickle at ``path`` (content ``digest``)
    names, sorted; None when the file is not one plain pickle stream (then what its objects
    run cannot be known, and a node reading it runs)."""
    with _lock:
        if digest in _known:
            return _known[digest]
    try:
        refs = _scan(path.read_bytes())
    except (OSError, ValueError):
        refs = None
    with _lock:
        _known[digest] = refs
    return refs


def _scan(data: bytes) -> list[tuple[str, str]] | None:
    refs: set[tuple[str, str]] = set()
    stack: list[object] = []
    memo: dict[object, object] = {}
    end = -1
    for opcode, arg, pos in pickletools.genops(data):
        name = opcode.name
        if name == "STOP":
            end = (pos or 0) + 1
        elif name in ("GLOBAL", "INST", "STACK_GLOBAL"):
            ref = _global(name, arg, stack)
            if ref is None:
                return None  # a name built some other way: cannot tell what it is
            refs.add(ref)
            stack.append(None)
        else:
            _track(name, arg, stack, memo)
    # Anything after the stream (joblib's raw arrays, a second pickle) was not read.
    return sorted(_python3(m, n) for m, n in refs) if end == len(data) else None


def _global(name: str, arg: object, stack: list[object]) -> tuple[str, str] | None:
    if name != "STACK_GLOBAL":
        text = str(arg)
        return text.partition(" ")[0], text.partition(" ")[2]
    found = stack[-2:] if len(stack) >= 2 else [None, None]
    if isinstance(found[0], str) and isinstance(found[1], str):
        return found[0], found[1]
    return None


def _track(name: str, arg: object, stack: list[object], memo: dict[object, object]) -> None:
    """Follow the strings a STACK_GLOBAL may take its module and name from."""
    if name in _STRINGS:
        stack.append(arg)
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1] if stack else None
    elif name in _PUTS:
        memo[arg] = stack[-1] if stack else None
    elif name in _GETS:
        stack.append(memo.get(arg))
    else:
        stack.append(None)


def _python3(module: str, name: str) -> tuple[str, str]:
    """Protocols 0-2 name Python 2 modules (``__builtin__``); unpickling maps them so."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name
