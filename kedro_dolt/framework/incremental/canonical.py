"""A canonical, type-tagged encoding of plain data, and its sha256.

Equal values give equal digests in every process and run: nothing depends on ``id()``, on the
salted ``hash()`` of strings or on memory addresses, and dicts and sets are sorted by their
items' encodings (so keys of any type, mixed too, sort). Values that compare equal across
types do not collide: ``1``, ``1.0`` and ``True`` each carry their type.

Objects beyond the builtin types are walked the way pickle walks them (``__reduce_ex__(4)``):
a dataclass or a plain class is its type (module + qualname) plus its ``__dict__`` /
``__slots__`` state, recursively and cycle-safe; what pickle refuses (sockets, locks, open
files, generators, C objects) raises :class:`NotStable` with the reason. Functions and modules
are code, not data: ``code.py`` passes a ``hook`` that fingerprints them (and the classes of
walked instances); without one, a class or a named function is its qualified name.
"""

from __future__ import annotations

import ast
import collections
import copyreg
import datetime as dt
import decimal
import dis
import enum
import hashlib
import inspect
import pathlib
import struct
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from typing import Any

Chain = tuple[str, ...]  # attribute names read after a name: ``helpers.scale`` -> ("scale",)
#: Called for each object that is not builtin plain data; returns the token standing for it
#: (a fingerprint of code) or None to encode it as data.
CodeHook = Callable[[object], "str | None"]

PYTHON = "python " + ".".join(str(part) for part in sys.version_info[:3])
_BLOB = 4096  # longer byte strings are encoded by their sha256, not copied
_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


class NotStable(Exception):
    """A value without a stable encoding; ``str()`` names it and says why."""


def stable_digest(value: object, *, what: str = "the value", hook: CodeHook | None = None) -> str:
    """The sha256 hex of ``value``'s canonical encoding; NotStable when it has none.

    ``what`` names the value in the NotStable reason (``closure value 'model' of f``).
    """
    encoder = _Encoder(what, hook)
    try:
        return hashlib.sha256(encoder.encode(value)).hexdigest()
    except RecursionError:
        raise NotStable(f"{what} is nested too deeply to encode") from None


def type_name(kind: type) -> str:
    """``module.qualname`` of a class; builtins by their bare name."""
    module = getattr(kind, "__module__", None) or "?"
    qualname = getattr(kind, "__qualname__", None) or getattr(kind, "__name__", "?")
    return str(qualname) if module == "builtins" else f"{module}.{qualname}"


def _pack(tag: str, *parts: bytes) -> bytes:
    """``tag`` and length-prefixed ``parts``: no two different inputs pack the same."""
    out = [tag.encode(), b"\0", struct.pack(">I", len(parts))]
    for part in parts:
        out += [struct.pack(">Q", len(part)), part]
    return b"".join(out)


def _blob(data: bytes) -> bytes:
    return b"R" + data if len(data) <= _BLOB else b"H" + hashlib.sha256(data).digest()


def _text(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _tz(value: dt.date | dt.time) -> bytes:
    tz = getattr(value, "tzinfo", None)
    return b"" if tz is None else _text(f"{type_name(type(tz))}:{tz}")


_SIMPLE: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda v: b"N",
    bool: lambda v: b"T" if v else b"F",
    int: lambda v: b"I" + str(v).encode(),
    float: lambda v: b"D" + repr(v).encode(),  # repr round-trips: -0.0, inf, nan kept
    complex: lambda v: b"C" + repr(v).encode(),
    str: lambda v: b"S" + _text(v),
    bytes: lambda v: b"Y" + _blob(v),
    bytearray: lambda v: b"A" + _blob(bytes(v)),
    type(...): lambda v: b"E",
    type(NotImplemented): lambda v: b"M",
    decimal.Decimal: lambda v: b"X" + str(v).encode(),  # str keeps precision: 1.0 != 1
}


class _Encoder:
    """One encoding pass: the path to the current value (for reasons) and the objects being
    encoded (a cycle back to one of them is encoded as its depth, not followed)."""

    def __init__(self, what: str, hook: CodeHook | None) -> None:
        self.what = what
        self.hook = hook
        self.path: list[str] = []
        self.active: dict[int, int] = {}

    def fail(self, value: object, why: str) -> NotStable:
        where = self.what + (f": its {''.join(self.path)}" if self.path else "")
        return NotStable(f"{where} is a {type_name(type(value))} ({why})")

    def encode(self, value: object) -> bytes:
        simple = _SIMPLE.get(type(value))
        if simple is not None:
            return simple(value)
        key = id(value)
        if key in self.active:  # a cycle: refer to the ancestor by its depth
            return _pack("cycle", str(self.active[key]).encode())
        self.active[key] = len(self.active)
        try:
            return self._composite(value)
        finally:
            del self.active[key]

    def at(self, step: str, value: object) -> bytes:
        self.path.append(step)
        try:
            return self.encode(value)
        finally:
            self.path.pop()

    def items(self, values: Iterable[object]) -> list[bytes]:
        return [self.at(f"[{i}]", v) for i, v in enumerate(values)]

    def mapping(self, pairs: Iterable[tuple[object, object]], ordered: bool = False) -> bytes:
        encoded = []
        for key, value in pairs:
            step = f".{key}" if isinstance(key, str) and key.isidentifier() else f"[{key!r:.40}]"
            encoded.append(_pack("kv", self.at(step, key), self.at(step, value)))
        return _pack("map" if ordered else "dict", *(encoded if ordered else sorted(encoded)))

    def _composite(self, value: object) -> bytes:
        kind = type(value)
        if kind is list or kind is tuple:
            return _pack(kind.__name__, *self.items(value))  # type: ignore[arg-type]
        if kind is dict:
            return self.mapping(value.items())  # type: ignore[attr-defined]
        if kind is set or kind is frozenset:
            return _pack(kind.__name__, *sorted(self.items(value)))  # type: ignore[arg-type]
        if self.hook is not None:
            token = self.hook(value)
            if token is not None:
                return _pack("code", _text(token))
        found = self._known(value)
        if found is None:
            found = _numpy(self, value)
        if found is None:
            found = _pandas(self, value)
        return found if found is not None else self._reduced(value)

    def _known(self, value: object) -> bytes | None:
        """Values of the standard library whose meaning is their text or name."""
        if isinstance(value, enum.Enum):
            cls = self.at(".__class__", type(value))
            return _pack("enum", cls, _text(value.name), self.at(".value", value.value))
        if isinstance(value, dt.date | dt.time):
            iso = _text(value.isoformat())  # pandas Timestamps keep their nanoseconds
            fold = str(getattr(value, "fold", 0)).encode()
            return _pack("time", _text(type_name(type(value))), iso, _tz(value), fold)
        if isinstance(value, dt.timedelta):
            return _pack("delta", _text(type_name(type(value))), _text(repr(value)))
        if isinstance(value, pathlib.PurePath | decimal.Decimal):
            return _pack("text", _text(type_name(type(value))), _text(str(value)))
        if isinstance(value, type):
            return _pack("class", _text(type_name(value)))
        if isinstance(value, _FUNCTIONS):
            return self._function(value)
        if isinstance(value, types.ModuleType):
            raise self.fail(value, "modules are fingerprinted as code, not as data")
        return None

    def _function(self, value: Any) -> bytes:
        if isinstance(value, types.MethodType):
            return _pack(
                "method", self.encode(value.__func__), self.at(".__self__", value.__self__)
            )
        owner = getattr(value, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):  # [].append
            return _pack("bound", _text(value.__qualname__), self.at(".__self__", owner))
        qualname = getattr(value, "__qualname__", "")
        if "<" in qualname:  # a lambda or a local function: no name finds it again
            raise self.fail(value, f"{qualname} has no importable name to stand for its code")
        return _pack("function", _text(f"{value.__module__}.{qualname}"))

    def _reduced(self, value: object) -> bytes:
        """What pickle would store: the constructor, its arguments and the state."""
        try:
            reducer = copyreg.dispatch_table.get(type(value))
            reduced = reducer(value) if reducer else value.__reduce_ex__(4)
        except Exception as error:  # pickle refuses it: so do we
            raise self.fail(value, f"no stable encoding: {error}") from None
        if isinstance(reduced, str):  # a module-level singleton, stored by name
            module = getattr(value, "__module__", None) or type(value).__module__
            return _pack("global", _text(f"{module}.{reduced}"))
        if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
            raise self.fail(value, f"__reduce_ex__ returned {type(reduced).__name__}")
        func, args, state, listitems, dictitems = [*reduced, None, None, None][:5]
        parts = [self.at(".__class__", func), self.at("(args)", args)]
        parts.append(self.mapping(state.items()) if type(state) is dict else self.encode(state))
        parts.append(_pack("list", *self.items(listitems)) if listitems is not None else b"")
        if dictitems is not None:
            ordered = isinstance(value, collections.OrderedDict)
            parts.append(self.mapping(dictitems, ordered=ordered))
        return _pack("object", *parts)


def _dtype(dtype: Any) -> bytes:
    if getattr(dtype, "fields", None):  # a structured dtype: its str alone is '|V16'
        return _text(str(dtype.descr))
    return _text(getattr(dtype, "str", str(dtype)))


def _numpy(encoder: _Encoder, value: object) -> bytes | None:
    np: Any = sys.modules.get("numpy")  # not loaded: the value cannot be a numpy object
    if np is None:
        return None
    if isinstance(value, np.generic):
        return _pack("npscalar", _dtype(value.dtype), _blob(value.tobytes()))
    if type(value) is not np.ndarray:  # subclasses (masked arrays) are walked by reduce
        return None
    array: Any = value
    shape = str(array.shape).encode()
    if array.dtype.hasobject:  # the buffer holds pointers: walk the elements instead
        return _pack("ndobject", shape, *encoder.items(array.ravel().tolist()))
    data = np.ascontiguousarray(array).tobytes()
    return _pack("ndarray", _dtype(array.dtype), shape, _blob(data))


def _pandas(encoder: _Encoder, value: object) -> bytes | None:
    pd: Any = sys.modules.get("pandas")
    if pd is None or not isinstance(value, pd.DataFrame | pd.Series | pd.Index):
        return None
    kind = _text(type_name(type(value)))
    if isinstance(value, pd.Index):
        return _pandas_index(encoder, pd, value)
    index = _pandas_index(encoder, pd, value.index)
    if isinstance(value, pd.Series):
        name = encoder.at(".name", value.name)
        return _pack("series", kind, name, _pandas_dtype(encoder, pd, value.dtype), index,
                     _pandas_values(encoder, pd, value))  # fmt: skip
    frame: Any = value
    columns = _pandas_index(encoder, pd, frame.columns)
    parts = []
    for position in range(frame.shape[1]):  # by position: duplicate names stay apart
        column = frame.iloc[:, position]
        encoder.path.append(f"[{frame.columns[position]!r:.40}]")
        try:
            dtype = _pandas_dtype(encoder, pd, column.dtype)
            parts.append(_pack("column", dtype, _pandas_values(encoder, pd, column)))
        finally:
            encoder.path.pop()
    return _pack("frame", kind, columns, index, *parts)


def _pandas_index(encoder: _Encoder, pd: Any, index: Any) -> bytes:
    kind = _text(type_name(type(index)))
    names = encoder.at(".names", list(index.names))
    dtype = _pandas_dtype(encoder, pd, index.dtype)
    return _pack("index", kind, names, dtype, _pandas_values(encoder, pd, index))


def _pandas_dtype(encoder: _Encoder, pd: Any, dtype: Any) -> bytes:
    if isinstance(dtype, pd.CategoricalDtype):  # "category" alone hides the categories
        categories = encoder.at(".categories", list(dtype.categories))
        return _pack("category", categories, b"T" if dtype.ordered else b"F")
    return _text(str(dtype))


def _pandas_values(encoder: _Encoder, pd: Any, values: Any) -> bytes:
    """Strings and typed columns by pandas' own hash; other object columns element by
    element (hash_pandas_object would hash 1 and "1" alike, and fail on lists)."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) != "string":
        return _pack("elements", *encoder.items(list(values)))
    hashed = pd.util.hash_pandas_object(values, index=False, categorize=False)
    return _pack("hashed", _blob(hashed.to_numpy().tobytes()))


# -- code text: the canonical forms of a function's source and bytecode ---------------------


def source_tree(obj: Any, kinds: tuple[type[ast.AST], ...], name: str) -> ast.Module | None:
    """The parsed source of ``obj``; None when it cannot be read or is not a ``kinds``
    statement called ``name`` (a lambda, code typed at a prompt)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None
    first = tree.body[0] if tree.body else None
    if not kinds or (isinstance(first, kinds) and getattr(first, "name", None) == name):
        return tree
    return None


def normalised(tree: ast.Module) -> str:
    """The AST without docstrings, comments or positions."""
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
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def bytecode_digest(code: types.CodeType) -> str:
    """For code whose source cannot be isolated (lambdas): bytecode is stable for one Python
    version, and holds no line numbers (those live in co_linetable)."""
    consts = [
        bytecode_digest(c) if isinstance(c, types.CodeType) else stable_digest(c)
        for c in code.co_consts
    ]
    layout = [code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags]
    names = [code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars]
    return "bytecode " + stable_digest([PYTHON, code.co_code, consts, names, layout])


class CodeReads:
    """Reads a code object's instructions: the globals, closure variables and imported
    names it loads, each with the attribute chain read from it (``a.b.c``), in first-use
    order; nested code objects (functions, lambdas, comprehensions) count as its own."""

    _ATTR = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
    _GLOBAL = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "LOAD_FROM_DICT_OR_GLOBALS"})
    _DEREF = frozenset({"LOAD_DEREF", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF"})
    _LOCAL = frozenset({"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR"})
    _IMPORT = frozenset({"IMPORT_FROM", "SWAP", "POP_TOP"})  # inside one import statement

    def __init__(self) -> None:
        self.globals: dict[str, list[Chain]] = {}
        self.derefs: dict[str, list[Chain]] = {}
        self.locals: dict[str, list[Chain]] = {}
        self.imports: dict[str, tuple[str, int, bool, Chain]] = {}
        self.stars: list[tuple[str, int]] = []
        self._owner: dict[str, list[Chain]] | None = None  # where the current load goes
        self._name = ""
        self._chain: list[str] = []
        self._consts: list[object] = [None, None]  # an import's level and fromlist
        self._pending: tuple[str, int, bool] | None = None  # the import being bound
        self._attrs: list[str] = []

    def walk(self, code: types.CodeType) -> None:
        for ins in dis.get_instructions(code):
            if ins.opname not in ("EXTENDED_ARG", "CACHE"):
                self._step(ins.opname, ins.argval)
        self._end_load()
        self._pending = None
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self.walk(const)

    def _step(self, op: str, arg: Any) -> None:
        if op in self._ATTR and self._owner is not None:
            self._chain.append(str(arg))
            return
        self._end_load()
        if self._pending is not None and not (op in self._IMPORT or op.startswith("STORE_")):
            self._pending = None
        if op in self._GLOBAL:
            self._start_load(self.globals, arg)
        elif op in self._DEREF:
            self._start_load(self.derefs, arg)
        elif op in self._LOCAL:
            self._start_load(self.locals, arg)
        elif op == "LOAD_CONST":
            self._consts = [self._consts[-1], arg]
        else:
            self._import(op, arg)

    def _import(self, op: str, arg: Any) -> None:
        if op == "IMPORT_NAME":
            level = self._consts[0] if isinstance(self._consts[0], int) else 0
            self._pending, self._attrs = (str(arg), level, self._consts[1] is None), []
        elif self._pending is None:
            return
        elif op == "IMPORT_FROM":
            self._attrs.append(str(arg))
        elif op == "IMPORT_STAR":
            self.stars.append(self._pending[:2])
        elif op.startswith("STORE_"):
            module, level, whole = self._pending
            attrs = tuple(self._attrs)
            self.imports[str(arg)] = (module, level, whole, attrs)
            if not whole:  # ``from m import a, b``: the next IMPORT_FROM starts afresh
                self._attrs = []

    def _start_load(self, owner: dict[str, list[Chain]], name: Any) -> None:
        self._owner, self._name, self._chain = owner, str(name), []

    def _end_load(self) -> None:
        if self._owner is not None:
            add_chain(self._owner, self._name, tuple(self._chain))
            self._owner = None


def add_chain(found: dict[str, list[Chain]], name: str, chain: Chain) -> None:
    chains = found.setdefault(name, [])
    if chain not in chains:
        chains.append(chain)
