"""A Kedro project with every kind of node the incremental runner must see through: a model
(pickled project object, versioned), a plot (plotly JSON, versioned), an in-memory split, a
node made by a factory (closure), a bound method, a module-level constant, helpers reached
as ``pkg.sub.module.f``, imported inside a function or through a decorator without
``functools.wraps``, nodes whose inputs, params or outputs can be swapped, and catalog
options (a Dolt input's columns, a CSV input's load_args, a CSV output's save_args, a Dolt
output's key).

Every node appends its name to ``$RAN_FILE`` when it executes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import dolt
from tests.support.kedro_project import make_project

PACKAGE = "inc_model"

MATHX = """
OFFSET = 1


def bump(values):
    return values + OFFSET


def bump2(values):
    return values * 2
"""

DECOR = """
def logged(func):
    def wrapper(*args, **kwargs):  # no functools.wraps: the closure holds func
        return func(*args, **kwargs)
    return wrapper


def inner(values):
    return values * 3


@logged
def helper_d(values):
    return inner(values)
"""

MODELS = """
class Scaler:
    def __init__(self, k):
        self.k = k

    def predict(self, frame):
        return frame["x"] * self.k


class Shift:
    def __init__(self, by):
        self.by = by

    def apply(self, raw):
        from inc_model.nodes import _ran

        _ran("shift")
        return raw.assign(x=raw["x"] + self.by)
"""

NODES = """
import os

import pandas as pd
import plotly.graph_objects as go

import inc_model.lib.deep.mathx
from inc_model.decor import helper_d, logged
from inc_model.models import Scaler

THRESHOLD = 1


def _ran(name):
    with open(os.environ["RAN_FILE"], "a") as handle:
        handle.write(name + "\\n")


def make_filter(t):
    def keep_above(raw):
        _ran("keep")
        return raw[raw["x"] > t]

    return keep_above


def prep(raw):
    _ran("prep")
    return raw.assign(x=inc_model.lib.deep.mathx.bump(raw["x"]))


def local_import(raw):
    _ran("local_import")
    from inc_model.lib.deep.mathx import bump2

    return raw.assign(x=bump2(raw["x"]))


def above(raw):
    _ran("above")
    return raw[raw["x"] > THRESHOLD]


def decorated(raw):
    _ran("decorated")
    return raw.assign(x=helper_d(raw["x"]))


@logged
def wrapped(raw):
    _ran("wrapped")
    return raw.assign(x=raw["x"] - 1)


def split(prepped):
    _ran("split")
    return prepped[prepped["id"] % 2 == 1], prepped[prepped["id"] % 2 == 0]


def train(train_rows, k):
    _ran("train")
    return Scaler(k)


def evaluate(model, test_rows):
    _ran("evaluate")
    return pd.DataFrame({"id": test_rows["id"], "pred": model.predict(test_rows)})


def plot(metrics):
    _ran("plot")
    return go.Figure(data=[go.Bar(x=list(metrics["id"]), y=list(metrics["pred"]))])


def combine(left, right):
    _ran("combine")
    both = left.merge(right, on="id", suffixes=("_l", "_r"))
    return pd.DataFrame({"id": both["id"], "d": both["x_l"] - both["x_r"]})


def sub(a, b):
    _ran("sub")
    return pd.DataFrame({"k": [1], "v": [a - b]})


def pair(raw):
    _ran("pair")
    return raw.assign(x=raw["x"] * 10), raw.assign(x=raw["x"] * 100)


def labels_info(labels):
    _ran("labels_info")
    return pd.DataFrame({"k": [1], "columns": ["|".join(map(str, labels.columns))]})


def to_csv(raw):
    _ran("to_csv")
    return raw


def keyed(raw):
    _ran("keyed")
    return raw.assign(y=raw["x"] * 2)


def width(narrow):
    _ran("width")
    return pd.DataFrame({"k": [1], "n": [len(narrow.columns)], "rows": [len(narrow)]})


def ints(table):
    _ran("ints")
    return pd.DataFrame({"k": [1], "v": [str(sorted(table.items()))]})
"""

PIPELINE = """
from inc_model.models import Shift

SHIFT = Shift(1)
return {"__default__": pipeline([
    node(make_filter(1), "raw", "kept", name="keep"),
    node(SHIFT.apply, "raw", "shifted", name="shift"),
    node(prep, "raw", "prepped", name="prep"),
    node(local_import, "raw", "imported", name="local_import"),
    node(above, "raw", "above_t", name="above"),
    node(decorated, "raw", "decorated_out", name="decorated"),
    node(wrapped, "raw", "wrapped_out", name="wrapped"),
    node(split, "prepped", ["train_rows", "test_rows"], name="split"),
    node(train, ["train_rows", "params:k"], "model", name="train"),
    node(evaluate, ["model", "test_rows"], "metrics", name="evaluate"),
    node(plot, "metrics", "chart", name="plot"),
    node(combine, ["kept", "shifted"], "combined", name="combine"),
    node(sub, ["params:a", "params:b"], "diff", name="sub"),
    node(pair, "raw", ["tens", "hundreds"], name="pair"),
    node(labels_info, "labels", "labels_info", name="labels_info"),
    node(to_csv, "raw", "raw_csv", name="to_csv"),
    node(keyed, "raw", "keyed", name="keyed"),
    node(width, "narrow", "widths", name="width"),
    node(ints, "params:ints", "ints_out", name="ints"),
])}
"""

ALL = [
    "keep",
    "shift",
    "prep",
    "local_import",
    "above",
    "decorated",
    "wrapped",
    "split",
    "train",
    "evaluate",
    "plot",
    "combine",
    "sub",
    "pair",
    "labels_info",
    "to_csv",
    "keyed",
    "width",
    "ints",
]

_TABLES = [
    "kept",
    "shifted",
    "prepped",
    "imported",
    "above_t",
    "decorated_out",
    "wrapped_out",
    "metrics",
    "combined",
    "diff",
    "tens",
    "hundreds",
    "labels_info",
    "keyed",
    "widths",
    "ints_out",
]
_KEYS = {"diff": "k", "labels_info": "k", "widths": "k", "ints_out": "k"}


def _dolt_entry(name: str, key: str = "id") -> str:
    return (
        f"{name}:\n  type: kedro_dolt.DoltTableDataset\n  database: data/warehouse\n"
        f"  table: {name}\n  save_args: {{primary_key: {key}}}\n"
    )


CATALOG = (
    _dolt_entry("raw")
    + "".join(_dolt_entry(t, _KEYS.get(t, "id")) for t in _TABLES if t != "keyed")
    + """
keyed:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: keyed
  load_args: {columns: [id]}
  save_args: {primary_key: id}
narrow:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: raw
  load_args: {columns: [id, x]}
model:
  type: pickle.PickleDataset
  filepath: data/model.pkl
  versioned: true
chart:
  type: plotly.JSONDataset
  filepath: data/chart.json
  versioned: true
labels:
  type: pandas.CSVDataset
  filepath: data/labels.csv
  load_args: {sep: ","}
raw_csv:
  type: pandas.CSVDataset
  filepath: data/raw.csv
  save_args: {index: false}
"""
)

PARAMS = """
k: 2
a: 5
b: 3
ints:
  1: one
  2: two
"""


def model_project(root: Path) -> Path:
    project = make_project(root, PACKAGE, nodes=NODES, pipeline=PIPELINE, catalog=CATALOG)
    src = project / "src" / PACKAGE
    (src / "decor.py").write_text(textwrap.dedent(DECOR))
    (src / "models.py").write_text(textwrap.dedent(MODELS))
    deep = src / "lib" / "deep"
    deep.mkdir(parents=True)
    for package in (src / "lib", deep):
        (package / "__init__.py").write_text("")
    (deep / "mathx.py").write_text(textwrap.dedent(MATHX))
    (project / "conf" / "base" / "parameters.yml").write_text(textwrap.dedent(PARAMS))
    (project / "data").mkdir()
    (project / "data" / "labels.csv").write_text("label;extra\na;1\nb;2\n")
    repo = project / "data" / "warehouse"
    repo.mkdir()
    dolt(repo, "init")
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE raw (id BIGINT PRIMARY KEY, x DOUBLE, note TEXT); "
        "INSERT INTO raw VALUES (1, 1.0, 'a'), (2, 2.0, 'b'), (3, 3.0, 'c'), (4, 4.0, 'd'); "
        "CALL DOLT_COMMIT('-Am', 'raw data');",
    )
    return project


def edit(project: Path, relative: str, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new`` in a project file."""
    path = project / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new))
