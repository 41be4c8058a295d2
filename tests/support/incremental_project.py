"""A small Kedro project for incremental runs: a Dolt source table ``raw``, a params input, a
project helper, Dolt outputs, a CSV file output, a CSV file input and an in-memory chain.

Every node appends its name to ``$RAN_FILE`` when it executes, so a test sees exactly which
nodes ran (skipped and restored nodes do not execute)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from tests.conftest import dolt
from tests.support.kedro_project import kedro_cli, make_project

PACKAGE = "inc_demo"

HELPERS = """
def scale(values, factor):
    return values * factor
"""

NODES = """
import os

import pandas as pd

from inc_demo.helpers import scale


def _ran(name):
    with open(os.environ["RAN_FILE"], "a") as handle:
        handle.write(name + "\\n")


def double(raw, factor):
    _ran("double")
    out = raw.copy()
    out["x"] = scale(out["x"], factor)
    return out


def total(doubled, fail):
    _ran("total")
    if fail:
        raise RuntimeError("total failed on purpose")
    return pd.DataFrame({"k": [1], "total": [float(doubled["x"].sum())]})


def report(totals, labels):
    _ran("report")
    return pd.DataFrame({"label": labels["label"], "total": float(totals["total"].iloc[0])})


def to_memory(raw):
    _ran("to_memory")
    return raw[["id"]]


def from_memory(ids):
    _ran("from_memory")
    return ids.assign(seen=True)


def stamp(totals):
    _ran("stamp")
    return totals
"""

PIPELINE = """
return {"__default__": pipeline([
    node(double, ["raw", "params:factor"], "doubled", name="double"),
    node(total, ["doubled", "params:fail"], "totals", name="total"),
    node(report, ["totals", "labels"], "report", name="report"),
    node(to_memory, "raw", "ids", name="to_memory"),
    node(from_memory, "ids", "seen", name="from_memory"),
    node(stamp, "totals", "stamped", name="stamp", tags=["always_run"]),
])}
"""

CATALOG = """
raw:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: raw
  save_args: {primary_key: id}
doubled:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: doubled
  save_args: {primary_key: id}
totals:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: totals
  save_args: {primary_key: k}
seen:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: seen
  save_args: {primary_key: id}
stamped:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: stamped
  save_args: {primary_key: k}
labels:
  type: pandas.CSVDataset
  filepath: data/labels.csv
report:
  type: pandas.CSVDataset
  filepath: data/report.csv
"""


def incremental_project(root: Path) -> Path:
    project = make_project(root, PACKAGE, nodes=NODES, pipeline=PIPELINE, catalog=CATALOG)
    (project / "src" / PACKAGE / "helpers.py").write_text(textwrap.dedent(HELPERS))
    (project / "conf" / "base" / "parameters.yml").write_text("factor: 2\nfail: false\n")
    (project / "data").mkdir()
    (project / "data" / "labels.csv").write_text("label\na\nb\n")
    repo = project / "data" / "warehouse"
    repo.mkdir()
    dolt(repo, "init")
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE raw (id BIGINT PRIMARY KEY, x DOUBLE); "
        "INSERT INTO raw VALUES (1, 1.0), (2, 2.0), (3, 3.0); "
        "CALL DOLT_COMMIT('-Am', 'raw data');",
    )
    return project


def run(project: Path, *args: str) -> tuple[list[str], str]:
    """``kedro run --runner kedro_dolt.IncrementalRunner ARGS``: the nodes that executed, in
    order, and the log; fails the test when the run fails."""
    ran, log = run_may_fail(project, *args)
    return ran, log


def run_may_fail(project: Path, *args: str, expect_ok: bool = True) -> tuple[list[str], str]:
    ran_file = project / "ran.txt"
    ran_file.unlink(missing_ok=True)
    result = kedro_cli(
        project,
        "run",
        "--runner",
        "kedro_dolt.IncrementalRunner",
        *args,
        env={"RAN_FILE": str(ran_file)},
    )
    log = result.stdout + result.stderr
    if expect_ok:
        assert result.returncode == 0, log
    else:
        assert result.returncode != 0, log
    ran = ran_file.read_text().split() if ran_file.exists() else []
    return ran, log


__all__ = ["incremental_project", "os", "run", "run_may_fail"]
