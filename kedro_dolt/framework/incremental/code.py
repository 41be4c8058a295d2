"""The fingerprint of a node's code: what it computes, not how its source is laid out.

Covered: the node function's own source and, followed recursively, every function or class of
the same top-level package (the project's own code) that it names directly or as an attribute
of a module (``helpers.clean(...)``), with ``functools.partial`` arguments. The source is
parsed and dumped as an AST without positions, docstrings or comments, so reformatting,
comments and docstrings do not count. Not covered: library code, module-level constants,
files the function reads. Code that cannot be read (a builtin, a C extension, a lambda typed at
a prompt) has no fingerprint: the node always runs.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

_FOLLOW = (types.FunctionType, type)


def code_fingerprint(func: Callable[..., Any]) -> str | None:
    """A sha256 of ``func``'s normalised code and the project code it calls, or None."""
    parts: list[str] = []
    func, bound = _unwrap(func)
    parts.append(bound)
    top = (getattr(func, "__module__", None) or "").split(".")[0]
    seen: set[int] = set()
    if not _collect(func, top, seen, parts):
        return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _unwrap(func: Callable[..., Any]) -> tuple[Callable[..., Any], str]:
    bound = ""
    while isinstance(func, functools.partial):
        bound += repr((func.args, sorted(func.keywords.items())))
        func = func.func
    return inspect.unwrap(func), bound


def _normalised(obj: Any) -> tuple[str, ast.AST] | None:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a lambda cut out of a longer line
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False), tree


def _collect(obj: Any, top: str, seen: set[int], parts: list[str]) -> bool:
    if id(obj) in seen:
        return True
    seen.add(id(obj))
    normalised = _normalised(obj)
    if normalised is None:
        return False
    dumped, tree = normalised
    parts.append(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}")
    parts.append(dumped)
    scope = getattr(obj, "__globals__", None)
    if scope is None:
        module = inspect.getmodule(obj)
        scope = vars(module) if module else {}
    for called in _named(tree, scope):
        if _ours(called, top) and not _collect(called, top, seen, parts):
            return False
    return True


def _named(tree: ast.AST, scope: dict[str, Any]) -> list[Any]:
    """Objects that ``tree`` names through ``scope``: ``f`` and ``module.f``."""
    found: list[Any] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in scope:
            found.append(scope[node.id])
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            owner = scope.get(node.value.id)
            if isinstance(owner, types.ModuleType):
                found.append(getattr(owner, node.attr, None))
    return found


def _ours(obj: Any, top: str) -> bool:
    if not top or not isinstance(obj, _FOLLOW):
        return False
    module = getattr(obj, "__module__", None) or ""
    return module == top or module.startswith(top + ".")
