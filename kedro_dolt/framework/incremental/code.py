"""The fingerprint of a node's code: everything that decides what it computes, not how its
source is laid out.

Project code (the node's top-level package, and any module whose file lies outside
site-packages, dist-packages and the standard library) is followed by source: each function's
source, parsed and dumped as an AST without positions, docstrings or comments (a lambda, or
code whose source cannot be isolated, by its bytecode and the Python version). From each
function the fingerprint follows what its bytecode loads, in its nested functions, lambdas and
comprehensions too: globals (plain data by value, project functions and classes as code,
project modules through the attribute chain used, ``a.b.c.f``), names imported inside the body,
closure cells (a decorator without ``functools.wraps`` keeps the real function there),
defaults, ``__wrapped__``. A class brings its source, bases, methods and properties and the
names its body reads; an instance (a bound method's ``__self__``, a global ``MODEL = Scaler(2)``)
its class and its state. Library code counts by the name and version of the distribution that
provides it; the standard library by the Python version.

Values are hashed on every call (a closure's list may have been mutated); only the parsing of
a code object or a class, and distribution versions, are cached. What has no stable encoding
(a socket in a closure, a library module of no distribution) leaves the code without a
fingerprint, with the reason: the node then runs.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .canonical import (
    PYTHON,
    Chain,
    CodeReads,
    NotStable,
    add_chain,
    bytecode_digest,
    normalised,
    source_tree,
    stable_digest,
    type_name,
)
from .distributions import distributions

Refs = tuple[tuple[str, tuple[Chain, ...]], ...]

_MISSING = object()
_CODE = (types.FunctionType, type, types.ModuleType, functools.partial, types.MethodType,
         types.BuiltinFunctionType)  # fmt: skip
#: A lock only orders access: held or not, the code computes the same. Project helpers often
#: guard a cache with a module-level one, which would otherwise make every caller "unstable".
_LOCKS = (type(threading.Lock()), type(threading.RLock()), threading.Condition,
          threading.Semaphore, threading.Event)  # fmt: skip


def code_fingerprint(func: Callable[..., Any]) -> str | None:
    """A sha256 of what decides ``func``'s results (see the module docstring), or None."""
    return code_fingerprint_why(func)[0]


def code_fingerprint_why(func: Callable[..., Any]) -> tuple[str | None, str | None]:
    """(sha256 hex, None), or (None, why the code cannot be fingerprinted reliably)."""
    if isinstance(func, types.BuiltinFunctionType):
        return None, f"{getattr(func, '__qualname__', func)!r} is a builtin: it has no Python code"
    run = _Run(_top_package(func))
    return run.digest(lambda: run.emit(run.follow(func, f"node function {_name(func)}")))


def globals_fingerprint(refs: Iterable[tuple[str, str]]) -> tuple[str | None, str | None]:
    """A digest of the classes and functions named by ``(module, qualname)`` pairs (a pickle's
    globals): project ones followed as code, library ones by distribution version."""
    run = _Run("")

    def follow_all() -> None:
        for module_name, qualname in sorted(set(refs)):
            try:
                found: Any = importlib.import_module(module_name)
                for part in qualname.split("."):
                    found = getattr(found, part)
            except Exception as error:  # any failure to import means the object is unknown
                raise NotStable(f"{module_name}.{qualname} cannot be imported ({error})") from None
            run.emit(module_name, qualname, run.follow(found, f"{module_name}.{qualname}"))

    return run.digest(follow_all)


@functools.cache
def distribution_version(top: str) -> str | None:
    """``name version`` of the installed distribution(s) providing top-level module ``top``."""
    names = sorted(set(_distributions().get(top, [])))
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found) or None


def _distributions() -> dict[str, list[str]]:
    return distributions()


@functools.cache
def _location(module_name: str) -> str:
    """'stdlib', 'library' or 'project', by where the module's file lies."""
    top = module_name.partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return "stdlib"
    module = sys.modules.get(module_name) or sys.modules.get(top)
    file = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), None)
    if file is None:  # made at run time (no file): nothing versions it, so follow it
        return "project"
    path = os.path.realpath(file)
    if {"site-packages", "dist-packages"} & set(path.split(os.sep)):
        return "library"
    paths = sysconfig.get_paths()
    stdlib = {os.path.realpath(paths[key]) for key in ("stdlib", "platstdlib") if key in paths}
    return "stdlib" if any(path.startswith(lib + os.sep) for lib in stdlib) else "project"


def _top_package(func: Any) -> str:
    for _ in range(100):  # a __wrapped__ cycle ends here
        if isinstance(func, functools.partial):
            func = func.func
        elif isinstance(func, types.MethodType):
            func = func.__func__
        elif hasattr(func, "__wrapped__"):
            func = func.__wrapped__
        else:
            break
    if not isinstance(func, types.FunctionType | type):
        func = type(func)
    top = _module_of(func).partition(".")[0]
    if _location(top) == "project":
        return top
    # Installed code: the project's own package still counts as project (a packaged Kedro
    # project); a library function used as a node is covered by its distribution's version.
    kedro = sys.modules.get("kedro.framework.project")
    return top if top and top == getattr(kedro, "PACKAGE_NAME", None) else ""


def _module_of(obj: Any) -> str:
    """The module that defines ``obj`` (a wrapper copies ``__module__``; its globals do not)."""
    if isinstance(obj, types.FunctionType):
        return str(obj.__globals__.get("__name__") or obj.__module__ or "")
    return str(getattr(obj, "__module__", None) or "")


def _name(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", None) or type_name(type(obj)))


class _Run:
    """One fingerprint: the stream hashed so far, and the code objects already followed
    (followed once; later mentions emit their token, so cycles end)."""

    def __init__(self, top: str) -> None:
        self.top = top
        self.hash = hashlib.sha256()
        self.seen: dict[int, str] = {}
        self.keep: list[object] = []  # followed objects stay alive: their ids stay theirs

    def digest(self, body: Callable[[], None]) -> tuple[str | None, str | None]:
        try:
            body()
        except NotStable as error:
            return None, str(error)
        except RecursionError:
            return None, "its code refers to itself too deeply to follow"
        return self.hash.hexdigest(), None

    def emit(self, *parts: str) -> None:
        for part in parts:
            data = part.encode("utf-8", "surrogatepass")
            self.hash.update(len(data).to_bytes(8, "big") + data)

    def project(self, module_name: str) -> bool:
        top = module_name.partition(".")[0]
        return bool(top) and (top == self.top or _location(module_name) == "project")

    def library(self, module_name: str, what: str) -> str:
        top = module_name.partition(".")[0]
        if _location(module_name) == "stdlib" or not top:
            return PYTHON
        version = distribution_version(top)
        if version is None:
            raise NotStable(f"{what} comes from {module_name!r}, library code of no installed "
                            "distribution: its version cannot be known")  # fmt: skip
        return version

    def data(self, value: object, where: str) -> str:
        if isinstance(value, _CODE):  # its token as is: no need to encode a single name
            return self.follow(value, where)
        return "data " + stable_digest(value, what=where, hook=lambda obj: self.hook(obj, where))

    def hook(self, obj: object, where: str) -> str | None:
        """Code met inside data is followed; locks count by type (see _LOCKS)."""
        if isinstance(obj, _CODE):
            return self.follow(obj, where)
        if isinstance(obj, _LOCKS):
            return "lock " + type_name(type(obj))
        if callable(obj) and hasattr(obj, "__wrapped__"):  # functools.lru_cache and kin
            return self.follow(obj, where)
        return None

    def remember(self, obj: object, label: str) -> str:
        token = f"#{len(self.seen)} {label}"  # the ordinal keeps two closures of f apart
        self.seen[id(obj)] = token
        self.keep.append(obj)
        return token

    def follow(self, obj: Any, where: str) -> str:
        """The token of code ``obj``; on first sight, its material goes into the stream."""
        if isinstance(obj, types.ModuleType):
            return self.module(obj, where)
        if id(obj) in self.seen:
            return self.seen[id(obj)]
        if isinstance(obj, types.FunctionType | type):
            module = _module_of(obj)
            label = f"{module}.{_name(obj)}"
            if not self.project(module):
                return f"{label} from {self.library(module, label)}"
            token = self.remember(obj, label)
            self.emit(token)
            if isinstance(obj, type):
                _follow_class(self, obj)
            else:
                _follow_function(self, obj)
            return token
        return self.follow_other(obj, where)

    def follow_other(self, obj: Any, where: str) -> str:
        """Partials, bound methods, builtins and callable instances: code plus data."""
        token = self.remember(obj, type_name(type(obj)))
        name = _name(obj)
        if isinstance(obj, functools.partial):
            inner = self.follow(obj.func, where)
            args = self.data([obj.args, obj.keywords], f"arguments of partial({name})")
            self.emit(token, inner, args)
        elif isinstance(obj, types.MethodType | types.BuiltinFunctionType):
            owner = obj.__self__
            if owner is None or isinstance(owner, types.ModuleType):  # math.floor
                module = str(getattr(obj, "__module__", None) or getattr(owner, "__name__", ""))
                return f"{module}.{name} from {self.library(module, name)}"
            inner = self.follow(getattr(obj, "__func__", type(owner)), where)
            self.emit(token, inner, self.data(owner, f"instance bound to {name}"))
        else:  # a callable instance (or a wrapper object): its class's code and its state
            kind = self.follow(type(obj), where)
            wrapped = getattr(obj, "__wrapped__", None)
            inner = self.follow(wrapped, where) if callable(wrapped) else ""
            state = "" if callable(wrapped) else self.data(obj, f"{where} (state)")
            self.emit(token, kind, inner, state)
        return token

    def module(self, module: types.ModuleType, where: str) -> str:
        name = module.__name__
        if not self.project(name):
            return f"module {name} from {self.library(name, name)}"
        if id(module) in self.seen:
            return self.seen[id(module)]
        token = self.remember(module, f"module {name}")  # used whole: all of its own code
        source = _module_source(module)
        if source is None:
            raise NotStable(f"{where} uses project module {name} whole, and its source "
                            "cannot be read")  # fmt: skip
        self.emit(token, source)
        for attr, value in sorted(vars(module).items()):
            if isinstance(value, types.FunctionType | type) and _module_of(value) == name:
                self.emit(attr, self.follow(value, f"{name}.{attr}"))
        return token

    def resolve(self, value: object, chains: Iterable[Chain], where: str) -> None:
        """Emit what ``value`` and the attribute chains read from it stand for."""
        if not isinstance(value, types.ModuleType):
            self.emit(self.data(value, where))
            return
        for chain in chains:
            found = self.walk(value, chain)
            label = ".".join((value.__name__, *chain))
            if found is _MISSING:  # fails when run, or a submodule not imported yet
                self.emit("missing", label)
            else:
                self.emit(label, self.data(found, f"{where} ({label})"))

    def walk(self, module: types.ModuleType, chain: Chain) -> Any:
        """What ``module.a.b`` reads, through project modules only: data or a class is
        walked whole, and a library module's version covers all of it."""
        found: Any = module
        for attr in chain:
            if not isinstance(found, types.ModuleType) or not self.project(found.__name__):
                break
            found = getattr(found, attr, _MISSING)
            if found is _MISSING:
                break
        return found


# -- functions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CodeInfo:
    """What a code object (with its nested ones) is and reads; computed once per object."""

    digest: str
    globals: Refs
    derefs: Refs  # closure variables (LOAD_DEREF), with their attribute chains
    imports: tuple[tuple[str, str, int, bool, Chain, tuple[Chain, ...]], ...]
    stars: tuple[tuple[str, int], ...]


_code_infos: dict[int, tuple[types.CodeType, _CodeInfo]] = {}


def _follow_function(run: _Run, func: types.FunctionType) -> None:
    info = _code_info(func)
    name = f"{_module_of(func)}.{func.__qualname__}"
    run.emit(info.digest)
    scope = func.__globals__
    builtins = scope.get("__builtins__", {})
    builtins = vars(builtins) if isinstance(builtins, types.ModuleType) else builtins
    for global_name, chains in info.globals:
        if global_name in scope:
            run.resolve(scope[global_name], chains, f"global {global_name!r} read by {name}")
        else:  # a builtin, or a NameError when run
            run.emit("unbound" if global_name not in builtins else "builtin", global_name)
    derefs = dict(info.derefs)
    for var, cell in zip(func.__code__.co_freevars, func.__closure__ or (), strict=False):
        try:
            value = cell.cell_contents
        except ValueError:  # not yet assigned
            run.emit("empty cell", var)
            continue
        run.resolve(value, derefs.get(var, ((),)), f"closure value {var!r} of {name}")
    package = scope.get("__package__") or str(scope.get("__name__", "")).rpartition(".")[0]
    for local, module, level, whole, attrs, chains in info.imports:
        where = f"{local!r} imported by {name}"
        run.resolve(_imported(module, level, package, whole, attrs, where), chains, where)
    for module, level in info.stars:
        where = f"'*' imported by {name}"
        run.emit(run.module(_imported(module, level, package, False, (), where), where))
    run.emit(run.data([func.__defaults__, func.__kwdefaults__], f"default arguments of {name}"))
    wrapped = func.__dict__.get("__wrapped__")
    if wrapped is not None:  # functools.wraps: the wrapper's code above, the real one here
        run.emit("wraps", run.follow(wrapped, f"function wrapped by {name}"))


def _imported(module: str, level: int, package: str, whole: bool, attrs: Chain, where: str) -> Any:
    """The object an ``import`` inside a function binds, imported now as it will be then."""
    try:
        name = importlib.util.resolve_name("." * level + module, package) if level else module
        found: Any = importlib.import_module(name)
        if whole:  # ``import a.b`` binds ``a`` (``as z``: then reads ``.b``)
            found = sys.modules[name.partition(".")[0]]
        for attr in attrs:
            if not hasattr(found, attr) and isinstance(found, types.ModuleType):
                importlib.import_module(f"{found.__name__}.{attr}")
            found = getattr(found, attr)
    except Exception as error:  # the node fails the same way when run
        raise NotStable(f"{where}: the import fails ({error})") from None
    return found


def _code_info(func: types.FunctionType) -> _CodeInfo:
    code = func.__code__
    cached = _code_infos.get(id(code))
    if cached is not None and cached[0] is code:
        return cached[1]
    # By the code object: inspect would unwrap a functools.wraps wrapper to the wrapped source.
    tree = source_tree(code, (ast.FunctionDef, ast.AsyncFunctionDef), code.co_name)
    digest = None if tree is None or code.co_name == "<lambda>" else normalised(tree)
    scan = CodeReads()
    scan.walk(code)
    info = _CodeInfo(
        digest or bytecode_digest(code),
        _refs(scan.globals),
        _refs(scan.derefs),
        tuple(
            (local, *binding, tuple(scan.locals.get(local, [()])))
            for local, binding in scan.imports.items()
        ),
        tuple(scan.stars),
    )
    _code_infos[id(code)] = (code, info)
    return info


def _refs(found: dict[str, list[Chain]]) -> Refs:
    return tuple((name, tuple(chains)) for name, chains in found.items())


# -- sources and classes --------------------------------------------------------------------


_module_sources: weakref.WeakKeyDictionary[types.ModuleType, str | None] = (
    weakref.WeakKeyDictionary()
)
_class_infos: weakref.WeakKeyDictionary[type, tuple[str | None, Refs]] = weakref.WeakKeyDictionary()


def _module_source(module: types.ModuleType) -> str | None:
    if module not in _module_sources:
        tree = source_tree(module, (), "")
        _module_sources[module] = None if tree is None else normalised(tree)
    return _module_sources[module]


def _class_info(cls: type) -> tuple[str | None, Refs]:
    """The class's normalised source and the names its body reads outside its methods
    (bases, decorators, class attributes, default values)."""
    cached = _class_infos.get(cls)
    if cached is None:
        tree = source_tree(cls, (ast.ClassDef,), cls.__name__)
        found: dict[str, list[Chain]] = {}
        if tree is not None:
            _class_names(tree.body[0], found)
        cached = (None if tree is None else normalised(tree), _refs(found))
        _class_infos[cls] = cached
    return cached


def _class_names(node: ast.AST, found: dict[str, list[Chain]]) -> None:
    """Names read when a class statement runs: not inside its methods' bodies."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        for part in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if part is not None:
                _class_names(part, found)
        return
    if isinstance(node, ast.AnnAssign):  # a field's annotation runs nothing that counts
        if node.value is not None:
            _class_names(node.value, found)
        return
    if isinstance(node, ast.Attribute | ast.Name):
        chain: list[str] = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            add_chain(found, node.id, tuple(chain))
            return
    for child in ast.iter_child_nodes(node):
        _class_names(child, found)


def _follow_class(run: _Run, cls: type) -> None:
    dump, names = _class_info(cls)
    label = f"{cls.__module__}.{cls.__qualname__}"
    module = sys.modules.get(cls.__module__)
    scope = vars(module) if module is not None else {}
    run.emit(dump or "no source")
    for name, chains in names:
        if name in scope:
            run.resolve(scope[name], chains, f"{name!r} read by class {label}")
    for base in cls.__bases__:
        if base is not object:
            run.emit("base", run.follow(base, f"base of {label}"))
    if type(cls) is not type:
        run.emit("metaclass", run.follow(type(cls), f"metaclass of {label}"))
    for attr, value in vars(cls).items():
        _follow_attribute(run, f"{label}.{attr}", value, has_source=dump is not None)


def _follow_attribute(run: _Run, label: str, value: Any, has_source: bool) -> None:
    """A class attribute's code; its value too when no source shows it."""
    methods = _methods(value)
    for func in methods:
        code = getattr(func, "__code__", None)
        if has_source and code is not None and code.co_filename.startswith("<"):
            continue  # generated from the class statement (dataclass, namedtuple)
        run.emit(label, run.follow(func, label))
    if not has_source and not methods and not label.rpartition(".")[2].startswith("__"):
        run.emit(label, run.data(value, f"class attribute {label}"))


def _methods(value: Any) -> list[Any]:
    """The functions a class attribute runs: methods, static/class methods, properties."""
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    if isinstance(value, functools.cached_property | functools.partialmethod):
        return [value.func]
    if isinstance(value, types.FunctionType) or (callable(value) and isinstance(value, type)):
        return [value]
    return []
