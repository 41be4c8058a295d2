"""The code fingerprint: what a node computes counts, how its source is laid out does not."""

from __future__ import annotations

import functools
import importlib
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from kedro_dolt.framework.incremental.code import code_fingerprint

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
