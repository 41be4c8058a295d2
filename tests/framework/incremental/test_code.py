"""The code fingerprint: what a node computes counts, how its source is laid out does not."""

from __future__ import annotations

import functools
import importlib
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest

from kedro_dolt.framework.incremental import code
from kedro_dolt.framework.incremental.code import (
    code_fingerprint,
    code_fingerprint_why,
    globals_fingerprint,
)

HELPERS = """
def scale(values, factor):
    return values * factor
"""

NODES = """
from fpkg.helpers import scale
from fpkg import helpers


def double(raw, factor):
    return scale(raw, factor)


def via_module(raw):
    return helpers.scale(raw, 2)


def uses_library(raw):
    import math
    return math.floor(raw)
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A project package ``fpkg`` (helpers + nodes) that a test rewrites and reloads."""
    root = tmp_path / "src"
    (root / "fpkg").mkdir(parents=True)
    (root / "fpkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(root))

    def load(nodes: str = NODES, helpers: str = HELPERS) -> ModuleType:
        (root / "fpkg" / "helpers.py").write_text(textwrap.dedent(helpers))
        (root / "fpkg" / "nodes.py").write_text(textwrap.dedent(nodes))
        for name in [m for m in sys.modules if m == "fpkg" or m.startswith("fpkg.")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return importlib.import_module("fpkg.nodes")

    yield load
    for name in [m for m in sys.modules if m == "fpkg" or m.startswith("fpkg.")]:
        del sys.modules[name]


def test_comments_docstrings_and_formatting_do_not_count(package):
    before = code_fingerprint(package().double)
    relaid = NODES.replace(
        "def double(raw, factor):\n    return scale(raw, factor)",
        'def double(raw,\n           factor):  # why\n    """Doubles."""\n    # comment\n'
        "    return scale( raw ,factor )",
    )
    assert relaid != NODES
    assert code_fingerprint(package(relaid).double) == before


def test_a_real_edit_counts(package):
    before = code_fingerprint(package().double)
    edited = NODES.replace("return scale(raw, factor)", "return scale(raw, factor) + 1")
    assert code_fingerprint(package(edited).double) != before


@pytest.mark.parametrize("node", ["double", "via_module"])
def test_project_functions_it_calls_count(package, node):
    before = code_fingerprint(getattr(package(), node))
    changed = HELPERS.replace("values * factor", "values * factor * 2")
    assert code_fingerprint(getattr(package(helpers=changed), node)) != before
    reformatted = HELPERS.replace("values * factor", "values*factor  # same")
    assert code_fingerprint(getattr(package(helpers=reformatted), node)) == before


def test_library_code_is_not_followed(package):
    # math.floor has no Python source: following it would make the node "unreadable".
    assert code_fingerprint(package().uses_library) is not None


def test_partial_arguments_count(package):
    nodes = package()
    two = code_fingerprint(functools.partial(nodes.double, factor=2))
    three = code_fingerprint(functools.partial(nodes.double, factor=3))
    assert two and three and two != three


def test_code_without_source_has_no_fingerprint():
    assert code_fingerprint(len) is None


# -- Round 2: everything that decides what a node computes ---------------------------------

_PACKAGES = ("fpkg", "otherpkg", "nodistpkg")


def _forget() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in _PACKAGES]:
        del sys.modules[name]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Writes modules (``{"fpkg/nodes.py": source}``) under a fresh sys.path entry and imports
    one; ``__init__.py`` files are made, and bytecode caches skipped so that a same-size
    rewrite within one second is still read."""
    root = tmp_path / "src"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def load(files: dict[str, str], module: str = "fpkg.nodes") -> ModuleType:
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            for parent in path.relative_to(root).parents:
                init = root / parent / "__init__.py"
                if parent != Path(".") and not init.exists():
                    init.write_text("")
            path.write_text(textwrap.dedent(text))
        _forget()
        importlib.invalidate_caches()
        return importlib.import_module(module)

    yield load
    _forget()


def _digest(func: Any) -> str:
    found, why = code_fingerprint_why(func)
    assert found is not None, why
    return found


def _edited(files: dict[str, str], edit: tuple[str, str, str]) -> dict[str, str]:
    path, old, new = edit
    assert old in files[path], (path, old)
    return {**files, path: files[path].replace(old, new)}


def check(load, files, node, changes, cosmetic=None):
    """Each edit in ``changes`` flips the digest of ``node(module)``; ``cosmetic`` does not."""
    before = _digest(node(load(files)))
    assert _digest(node(load(files))) == before  # a reload alone changes nothing
    for change in changes:
        assert _digest(node(load(_edited(files, change)))) != before, change
    if cosmetic is not None:
        assert _digest(node(load(_edited(files, cosmetic)))) == before, cosmetic


class TestFollowedNames:
    def test_attribute_chain_through_modules(self, project):
        files = {
            "fpkg/sub/mod.py": "def fn(x):\n    return x + 1\n\n\ndef unused(x):\n    return 0\n",
            "fpkg/nodes.py": "import fpkg.sub.mod\n\n\ndef f(x):\n    return fpkg.sub.mod.fn(x)\n",
        }
        check(
            project,
            files,
            lambda m: m.f,
            [("fpkg/sub/mod.py", "x + 1", "x + 2")],
            ("fpkg/sub/mod.py", "return 0", "return 1"),  # only the attributes it reads count
        )

    @pytest.mark.parametrize(
        "change",
        [
            ("fpkg/helpers.py", "x * 2", "x * 3"),
            ("fpkg/helpers.py", "x - 1", "x - 2"),
            ("fpkg/sub/mod.py", "x + 1", "x + 2"),
        ],
    )
    def test_imports_inside_the_body(self, project, change):
        files = {
            "fpkg/helpers.py": "def scale(x):\n    return x * 2\n\n\ndef other(x):\n"
            "    return x - 1\n",
            "fpkg/sub/mod.py": "def fn(x):\n    return x + 1\n",
            "fpkg/nodes.py": """
                def f(x):
                    from fpkg.helpers import scale
                    import fpkg.sub.mod as m
                    from . import helpers as h
                    return scale(x) + m.fn(x) + h.other(x)
            """,
        }
        check(project, files, lambda m: m.f, [change], ("fpkg/helpers.py", "x * 2", "x*2"))

    @pytest.mark.parametrize("helper", ["scale", "offset", "cube"])
    def test_nested_functions_lambdas_and_comprehensions(self, project, helper):
        helpers = "".join(
            f"def {n}(v):\n    return v + {i}\n\n\n"
            for i, n in enumerate(["scale", "offset", "cube"], start=1)
        )
        files = {
            "fpkg/helpers.py": helpers,
            "fpkg/nodes.py": """
                from fpkg.helpers import cube, offset, scale


                def f(xs):
                    def inner(v):
                        return scale(v)

                    g = lambda v: offset(v)  # noqa: E731
                    return [cube(x) for x in xs] + list(map(inner, xs)) + list(map(g, xs))
            """,
        }
        number = ["scale", "offset", "cube"].index(helper) + 1
        change = (
            "fpkg/helpers.py",
            f"def {helper}(v):\n    return v + {number}",
            f"def {helper}(v):\n    return v + 10",
        )
        check(project, files, lambda m: m.f, [change])

    def test_another_local_package_is_project_code(self, project):
        files = {
            "otherpkg/util.py": "def f(x):\n    return x + 1\n",
            "fpkg/nodes.py": """
                import otherpkg.util
                from otherpkg.util import f as g


                def f(x):
                    return otherpkg.util.f(x)


                def h(x):
                    return g(x)
            """,
        }
        for node in (lambda m: m.f, lambda m: m.h):
            check(
                project,
                files,
                node,
                [("otherpkg/util.py", "x + 1", "x + 2")],
                ("otherpkg/util.py", "x + 1", "x  +  1"),
            )


CLASSES = """
from fpkg.util import offset

FACTOR = 2


class Base:
    def shift(self, v):
        return v + 1


class Model(Base):
    factor = FACTOR

    @property
    def double(self):
        return self.factor * 2

    @staticmethod
    def clip(v):
        return min(v, 100)

    def predict(self, v):
        return self.clip(self.shift(v) * self.double) + offset(v)
"""


UTIL = "def offset(v):\n    return v - 1\n"


class TestClasses:
    @pytest.mark.parametrize(
        "change",
        [
            ("fpkg/helpers.py", "v + 1", "v + 3"),  # a base class's method
            ("fpkg/helpers.py", "self.factor * 2", "self.factor * 3"),  # a property
            ("fpkg/helpers.py", "FACTOR = 2", "FACTOR = 5"),  # a global the class body reads
            ("fpkg/helpers.py", "min(v, 100)", "min(v, 99)"),  # a static method
            ("fpkg/helpers.py", "self.clip(", "abs("),  # the method itself
            ("fpkg/util.py", "v - 1", "v - 2"),  # a function a method calls
        ],
    )
    def test_class_code_counts(self, project, change):
        files = {
            "fpkg/util.py": UTIL,
            "fpkg/helpers.py": CLASSES,
            "fpkg/nodes.py": "from fpkg.helpers import Model\n\n\ndef f(v):\n"
            "    return Model().predict(v)\n",
        }
        cosmetic = ("fpkg/helpers.py", "class Base:\n", 'class Base:\n    """Doc."""\n\n')
        check(project, files, lambda m: m.f, [change], cosmetic)


class TestClosures:
    def test_decorator_without_wraps_hides_the_function_in_its_closure(self, project):
        files = {
            "fpkg/helpers.py": "def deco(f):\n    def wrapper(*a):\n        return f(*a)\n\n"
            "    return wrapper\n",
            "fpkg/nodes.py": "from fpkg.helpers import deco\n\n\n@deco\ndef f(x):\n"
            "    return x + 1\n",
        }
        check(
            project,
            files,
            lambda m: m.f,
            [("fpkg/nodes.py", "x + 1", "x + 2"), ("fpkg/helpers.py", "f(*a)\n", "f(*a) * 2\n")],
            ("fpkg/nodes.py", "x + 1", "x+1"),
        )

    def test_factory_arguments_count(self, project):
        nodes = project({"fpkg/nodes.py": FACTORY})
        assert _digest(nodes.make_filter(1)) == _digest(nodes.make_filter(1))
        assert _digest(nodes.make_filter(1)) != _digest(nodes.make_filter(2))

    def test_mutated_closure_value_is_hashed_again(self, project):
        nodes = project({"fpkg/nodes.py": FACTORY})
        limits = [1]
        func = nodes.make_filter(limits)
        before = _digest(func)
        limits.append(2)
        assert _digest(func) != before

    def test_unstable_closure_value_says_which(self, project):
        nodes = project({"fpkg/nodes.py": FACTORY})
        with socket.socket() as sock:
            found, why = code_fingerprint_why(nodes.make_filter(sock))
        assert found is None
        assert "closure value 't' of fpkg.nodes.make_filter.<locals>.f" in why
        assert "socket" in why


FACTORY = """
def make_filter(t):
    def f(df):
        return df[df.x > t]

    return f
"""


class TestGlobals:
    NODES = """
        import threading

        from fpkg.helpers import Scaler, helper

        THRESHOLD = 3
        MODEL = Scaler(2)
        DISPATCH = {"a": helper}
        _lock = threading.Lock()


        def f(x):
            with _lock:
                return x > THRESHOLD


        def g(x):
            return MODEL.apply(x)


        def h(x):
            return DISPATCH["a"](x)
    """
    HELPERS = """
        class Scaler:
            def __init__(self, k):
                self.k = k

            def apply(self, x):
                return x * self.k

            def __call__(self, x):
                return self.apply(x) + 1


        def helper(x):
            return x - 1
    """

    def files(self) -> dict[str, str]:
        return {"fpkg/nodes.py": self.NODES, "fpkg/helpers.py": self.HELPERS}

    def test_module_constant(self, project):
        change = ("fpkg/nodes.py", "THRESHOLD = 3", "THRESHOLD = 4")
        cosmetic = ("fpkg/nodes.py", "THRESHOLD = 3", "THRESHOLD = 3  # tuned")
        check(project, self.files(), lambda m: m.f, [change], cosmetic)

    def test_project_instance_by_class_code_and_state(self, project):
        changes = [
            ("fpkg/nodes.py", "Scaler(2)", "Scaler(3)"),
            ("fpkg/helpers.py", "x * self.k", "x * self.k * 2"),
        ]
        check(project, self.files(), lambda m: m.g, changes, ("fpkg/nodes.py", "(2)", "( 2 )"))

    def test_functions_inside_data(self, project):
        check(project, self.files(), lambda m: m.h, [("fpkg/helpers.py", "x - 1", "x - 2")])

    def test_unstable_global_says_which(self, project):
        nodes = project(
            {"fpkg/nodes.py": "GEN = (i for i in range(3))\n\n\ndef f():\n    return next(GEN)\n"}
        )
        found, why = code_fingerprint_why(nodes.f)
        assert found is None
        assert "global 'GEN' read by fpkg.nodes.f is a generator" in why


class TestDefaults:
    def test_defaults_by_value(self, project):
        files = {
            "fpkg/helpers.py": "def helper(x):\n    return x - 1\n",
            "fpkg/nodes.py": """
                from fpkg.helpers import helper

                K = 3


                def f(x, k=K, *, fn=helper):
                    return fn(x) * k
            """,
        }
        changes = [("fpkg/nodes.py", "K = 3", "K = 4"), ("fpkg/helpers.py", "x - 1", "x - 2")]
        check(project, files, lambda m: m.f, changes, ("fpkg/nodes.py", "K = 3", "K = 3  # ok"))


class TestPartialsAndMethods:
    def test_partial_arguments_by_value(self, project):
        nodes = project({"fpkg/nodes.py": "def f(x, opts):\n    return x\n"})
        a = functools.partial(nodes.f, opts={"b": 1, "a": 2})
        b = functools.partial(nodes.f, opts={"a": 2, "b": 1})
        c = functools.partial(nodes.f, opts={"a": 2, "b": 2})
        assert _digest(a) == _digest(b) != _digest(c)
        assert _digest(functools.partial(a)) != _digest(functools.partial(c))

    def test_partial_follows_the_function(self, project):
        files = {
            "fpkg/helpers.py": "def helper(x):\n    return x - 1\n",
            "fpkg/nodes.py": "from fpkg.helpers import helper\n\n\ndef f(x, k):\n"
            "    return helper(x) * k\n",
        }
        node = lambda m: functools.partial(functools.partial(m.f, k=2))  # noqa: E731
        check(project, files, node, [("fpkg/helpers.py", "x - 1", "x - 2")])

    def test_bound_method_counts_code_and_state(self, project):
        files = {"fpkg/helpers.py": TestGlobals.HELPERS, "fpkg/nodes.py": ""}
        helpers = project(files, "fpkg.helpers")
        assert _digest(helpers.Scaler(2).apply) == _digest(helpers.Scaler(2).apply)
        assert _digest(helpers.Scaler(2).apply) != _digest(helpers.Scaler(3).apply)
        change = ("fpkg/helpers.py", "x * self.k", "x * self.k * 2")
        check(lambda f: project(f, "fpkg.helpers"), files, lambda m: m.Scaler(2).apply, [change])

    def test_callable_instance_counts_code_and_state(self, project):
        files = {"fpkg/helpers.py": TestGlobals.HELPERS, "fpkg/nodes.py": ""}
        helpers = project(files, "fpkg.helpers")
        assert _digest(helpers.Scaler(2)) != _digest(helpers.Scaler(3))
        change = ("fpkg/helpers.py", "self.apply(x) + 1", "self.apply(x) + 2")
        check(lambda f: project(f, "fpkg.helpers"), files, lambda m: m.Scaler(2), [change])

    def test_wraps_decorator_counts_wrapper_and_wrapped(self, project):
        files = {
            "fpkg/helpers.py": """
                import functools


                def deco(f):
                    @functools.wraps(f)
                    def wrapper(*a):
                        return f(*a)

                    return wrapper
            """,
            "fpkg/nodes.py": "from fpkg.helpers import deco\n\n\n@deco\ndef f(x):\n"
            "    return x + 1\n",
        }
        changes = [("fpkg/nodes.py", "x + 1", "x + 2"), ("fpkg/helpers.py", "f(*a)\n", "-f(*a)\n")]
        check(project, files, lambda m: m.f, changes, ("fpkg/nodes.py", "x + 1", "x+1"))

    def test_wrapped_function_only_reachable_by_wrapped(self, project):
        files = {
            "fpkg/helpers.py": """
                import functools


                def deco(f):
                    @functools.wraps(f)
                    def wrapper(*a):
                        return wrapper.__wrapped__(*a)

                    return wrapper
            """,
            "fpkg/nodes.py": "from fpkg.helpers import deco\n\n\n@deco\ndef f(x):\n"
            "    return x + 1\n",
        }
        check(project, files, lambda m: m.f, [("fpkg/nodes.py", "x + 1", "x + 2")])


class TestLibraries:
    FILES: ClassVar[dict[str, str]] = {
        "fpkg/helpers.py": "import pandas as pd\n\n\ndef stack(a, b):\n"
        "    return pd.concat([a, b])\n",
        "fpkg/nodes.py": "import math\n\nfrom fpkg.helpers import stack\n\n\ndef f(a, b):\n"
        "    return stack(a, b).apply(math.floor)\n",
    }

    def test_library_upgrade_counts(self, project, monkeypatch):
        nodes = project(self.FILES)
        before = _digest(nodes.f)
        real = code.distribution_version
        monkeypatch.setattr(
            code,
            "distribution_version",
            lambda top: "pandas 99.0" if top == "pandas" else real(top),
        )
        assert _digest(nodes.f) != before

    def test_other_libraries_do_not_count(self, project, monkeypatch):
        nodes = project(self.FILES)
        before = _digest(nodes.f)
        real = code.distribution_version
        monkeypatch.setattr(
            code, "distribution_version", lambda top: "numpy 99.0" if top == "numpy" else real(top)
        )
        assert _digest(nodes.f) == before

    def test_python_version_counts_for_the_standard_library(self, project, monkeypatch):
        nodes = project(self.FILES)
        before = _digest(nodes.f)
        monkeypatch.setattr(code, "PYTHON", "python 3.99.0")
        assert _digest(nodes.f) != before

    def test_library_function_as_node_by_version(self, monkeypatch):
        import pandas as pd

        frame = pd.DataFrame({"a": [1.0]})
        before = [_digest(pd.concat), _digest(frame.sum)]  # not followed through pandas' source
        monkeypatch.setattr(code, "distribution_version", lambda top: f"{top} 99.0")
        after = [_digest(pd.concat), _digest(frame.sum)]
        assert before[0] != after[0] and before[1] != after[1]

    def test_library_of_no_distribution_says_so(self, project, tmp_path, monkeypatch):
        site = tmp_path / "site-packages"
        (site / "nodistpkg").mkdir(parents=True)
        (site / "nodistpkg" / "__init__.py").write_text("def g(x):\n    return x\n")
        monkeypatch.syspath_prepend(str(site))
        nodes = project(
            {"fpkg/nodes.py": "import nodistpkg\n\n\ndef f(x):\n    return nodistpkg.g(x)\n"}
        )
        found, why = code_fingerprint_why(nodes.f)
        assert found is None and "nodistpkg" in why and "distribution" in why


class TestLambdas:
    NODES = (
        "THRESHOLD = 1\n"
        "PIPELINE = [(lambda x: x + 1, 0), (lambda x: x + 2, 0), (lambda x: x > THRESHOLD, 0)]\n"
    )

    def test_inline_lambdas_by_bytecode(self, project):
        files = {"fpkg/nodes.py": self.NODES}
        nodes = project(files)
        first, second, third = (_digest(step[0]) for step in nodes.PIPELINE)
        assert len({first, second, third}) == 3
        moved = _edited(files, ("fpkg/nodes.py", "THRESHOLD = 1\n", "THRESHOLD = 1\n\n# moved\n"))
        assert _digest(project(moved).PIPELINE[0][0]) == first
        changed = _edited(files, ("fpkg/nodes.py", "x + 1", "x + 3"))
        assert _digest(project(changed).PIPELINE[0][0]) != first
        changed = _edited(files, ("fpkg/nodes.py", "THRESHOLD = 1", "THRESHOLD = 2"))
        assert _digest(project(changed).PIPELINE[2][0]) != third

    def test_code_without_a_file_by_bytecode(self):
        scope: dict[str, Any] = {"__name__": "made_at_run_time"}
        exec(compile("def f(x):\n    return x + 1\n", "<string>", "exec"), scope)
        other: dict[str, Any] = {"__name__": "made_at_run_time"}
        exec(compile("def f(x):\n    return x + 2\n", "<string>", "exec"), other)
        assert _digest(scope["f"]) != _digest(other["f"])


def test_same_digest_in_another_process(project, tmp_path):
    files = {
        "fpkg/nodes.py": """
            LABELS = {"b", "a", "c"}
            LIMITS = {2: "x", "k": 1.5}


            def f(x):
                return x in LABELS and LIMITS
        """
    }
    here = _digest(project(files).f)
    script = (
        "from kedro_dolt.framework.incremental.code import code_fingerprint\n"
        "import fpkg.nodes\nprint(code_fingerprint(fpkg.nodes.f))\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(tmp_path / "src")}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.split()[-1] == here


class TestGlobalsFingerprint:
    def test_project_class_code(self, project):
        files = {"fpkg/helpers.py": CLASSES, "fpkg/util.py": UTIL, "fpkg/nodes.py": ""}
        refs = [("fpkg.helpers", "Model"), ("builtins", "set"), ("copyreg", "_reconstructor")]
        project(files)
        before, why = globals_fingerprint(refs)
        assert before is not None, why
        assert globals_fingerprint(list(reversed(refs)))[0] == globals_fingerprint(refs)[0]
        project(_edited(files, ("fpkg/helpers.py", "v + 1", "v + 2")))
        assert globals_fingerprint(refs)[0] != before

    def test_library_by_version(self, monkeypatch):
        refs = [("pandas.core.frame", "DataFrame")]
        before, why = globals_fingerprint(refs)
        assert before is not None, why
        monkeypatch.setattr(code, "distribution_version", lambda top: f"{top} 99.0")
        assert globals_fingerprint(refs)[0] != before

    def test_unimportable(self):
        found, why = globals_fingerprint([("no_such_module_xyz", "Thing")])
        assert found is None and "no_such_module_xyz.Thing" in why
