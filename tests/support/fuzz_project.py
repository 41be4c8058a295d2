"""The project of the incremental-run fuzzer (tests/scenarios/test_incremental_fuzz.py): its
source, catalog and params rendered from :class:`Knobs`, its Dolt source table, in-process
and ``kedro run`` runs, and a reference evaluator that computes every output from scratch.

Pipeline (``fuzz_demo``), every node appending its name to ``$RAN_FILE`` when it executes::

    raw (Dolt, load_args.columns) + params:factor -> prep -> prepped (Dolt)
    prepped -> filter (make_filter(t), a closure) -> filtered (Dolt, load_args.columns)
    [prepped, filtered] (order swappable) -> diff -> diffs (Dolt)
    filtered -> scale (Scaler(k).apply, a bound method) -> scaled (Dolt)
    diffs + scaled + params:opts (nested) -> summarize -> summary (CSV, save_args.sep)
    labels (CSV, load_args.sep/usecols) -> label_info -> label_info (Dolt)

``prep`` calls a helper (``helpers.scale``) and reads a module constant (``BONUS``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import linecache
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from kedro.io.core import DatasetError
from kedro_datasets.pandas import CSVDataset

from kedro_dolt import DoltTableDataset
from tests.support.kedro_project import kedro_cli, make_project

PACKAGE = "fuzz_demo"
#: The Dolt outputs and their primary keys.
DOLT_OUTPUTS = {
    "prepped": "id",
    "filtered": "id",
    "diffs": "id",
    "scaled": "id",
    "label_info": "k",
}
#: A numeric column of each Dolt output, for edits by hand.
EDITABLE = {"prepped": "v", "filtered": "v", "diffs": "d", "scaled": "s", "label_info": "n"}
PRODUCER = {
    "prepped": "prep",
    "filtered": "filter",
    "diffs": "diff",
    "scaled": "scale",
    "summary": "summarize",
    "label_info": "label_info",
}
#: The datasets each node reads (params aside).
INPUTS = {
    "prep": ["raw"],
    "filter": ["prepped"],
    "diff": ["prepped", "filtered"],
    "scale": ["filtered"],
    "summarize": ["diffs", "scaled"],
    "label_info": ["labels"],
}
COSMETIC = ["", "    # tidy: a comment only\n", '    """Prepare the raw rows."""\n']

HELPERS = """
def scale(values, factor):
    return values * factor + {helper_k}
"""

NODES = """
import os

import pandas as pd

from fuzz_demo import helpers

BONUS = {bonus}


def _ran(name):
    with open(os.environ["RAN_FILE"], "a") as handle:
        handle.write(name + "\\n")


def prep(raw, factor):
{cosmetic}    _ran("prep")
    raw = raw.sort_values("id").reset_index(drop=True)
    extra = raw["y"].astype(float) if "y" in raw.columns else 0.0
    tag = raw["g"].astype(str) if "g" in raw.columns else "none"
    v = helpers.scale(raw["x"].astype(float), factor) + extra + {prep_k} + BONUS
    return pd.DataFrame({{"id": raw["id"].astype("int64"), "v": v, "g": tag}})


def make_filter(threshold):
    def keep(prepped):
        _ran("filter")
        out = prepped[prepped["v"] > threshold]
        return out.sort_values("id").reset_index(drop=True)

    return keep


class Scaler:
    def __init__(self, k):
        self.k = k

    def apply(self, filtered):
        _ran("scale")
        out = filtered.sort_values("id").reset_index(drop=True)
        return pd.DataFrame({{"id": out["id"].astype("int64"), "s": out["v"] * self.k}})


def diff(left, right):
    _ran("diff")
    merged = left[["id", "v"]].merge(
        right[["id", "v"]], on="id", how="left", suffixes=("_l", "_r")
    )
    merged["d"] = merged["v_l"] - merged["v_r"].fillna(0.0)
    return merged[["id", "d"]].sort_values("id").reset_index(drop=True)


def summarize(diffs, scaled, opts):
    _ran("summarize")
    digits = opts["round"]["digits"]
    return pd.DataFrame({{
        "name": ["d_sum", "s_sum", "n"],
        "value": [
            round(float(diffs["d"].sum()) + opts["offset"], digits),
            round(float(scaled["s"].sum()) + opts["offset"], digits),
            float(len(diffs)),
        ],
    }})


def label_info(labels):
    _ran("label_info")
    cols = [str(c) for c in labels.columns]
    first = [str(labels[c].iloc[0]) if len(labels) else "" for c in labels.columns]
    return pd.DataFrame({{"k": list(range(len(cols))), "col": cols, "first": first,
                         "n": [len(labels)] * len(cols)}})
"""

PIPELINE = """
return {{"__default__": pipeline([
    node(prep, ["raw", "params:factor"], "prepped", name="prep"),
    node(make_filter({filter_t}), "prepped", "filtered", name="filter"),
    node(diff, {diff_inputs}, "diffs", name="diff"),
    node(Scaler({scaler_k}).apply, "filtered", "scaled", name="scale"),
    node(summarize, ["diffs", "scaled", "params:opts"], "summary", name="summarize"),
    node(label_info, "labels", "label_info", name="label_info"),
])}}
"""


@dataclasses.dataclass(frozen=True)
class Knobs:
    """Everything of the project a change may touch, besides the data."""

    prep_k: int = 0  # code of the node
    helper_k: int = 0  # code of the helper it calls
    cosmetic: int = 0  # a comment or docstring (must not matter)
    bonus: int = 0  # module-level constant
    filter_t: int = 4  # closure value of make_filter(t)
    scaler_k: int = 2  # instance state of a bound method
    swap: bool = False  # diff's inputs swapped
    factor: int = 2  # params:factor
    offset: int = 0  # params:opts.offset
    digits: int = 2  # params:opts.round.digits
    raw_columns: tuple[str, ...] | None = None  # raw's load_args.columns
    filtered_columns: tuple[str, ...] | None = None  # filtered's load_args.columns
    labels_sep: str = ","
    labels_usecols: tuple[int, ...] | None = None
    summary_sep: str = ","

    def params(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "opts": {"offset": self.offset, "round": {"digits": self.digits}},
        }


class Warehouse:
    """The Dolt database of the project: a local repository, or a database on a server."""

    def __init__(self, path: Path, server: Any = None, db: str = "") -> None:
        self.path, self.server, self.db = path, server, db

    @property
    def args(self) -> dict[str, Any]:
        if self.server is not None:
            return {"database": self.db, "credentials": {"con": self.server.url()}}
        return {"database": str(self.path)}

    def sql(self, *statements: str) -> None:
        """Statements of someone else, outside kedro-dolt, in one session."""
        if self.server is not None:
            with self.server.connect(database=self.db) as conn, conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
            return
        for attempt in range(4):  # Dolt's transient lock errors on a busy machine
            proc = subprocess.run(
                ["dolt", "sql", "-q", ";\n".join(statements) + ";"],
                cwd=self.path,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            if proc.returncode == 0:
                return
            if "read only" not in proc.stderr and "manifest" not in proc.stderr:
                break
            time.sleep(0.2 * 2**attempt)
        raise RuntimeError(f"dolt sql failed: {proc.stderr or proc.stdout}")

    def table(self, name: str, **kwargs: Any) -> DoltTableDataset:
        return DoltTableDataset(**self.args, table=name, **kwargs)


def raw_sql(rows: dict[int, tuple[float, float, str]]) -> list[str]:
    values = ", ".join(f"({i}, {x}, {y}, '{g}')" for i, (x, y, g) in sorted(rows.items()))
    return ["DELETE FROM raw", *([f"INSERT INTO raw VALUES {values}"] if rows else [])]


def labels_text(rows: list[tuple[int, str, int]]) -> str:
    """Parses under both separators: ``id;name,score``."""
    return "id;name,score\n" + "".join(f"{i};{n},{s}\n" for i, n, s in rows)


def create_project(
    root: Path,
    warehouse: Warehouse,
    knobs: Knobs,
    raw: dict[int, tuple[float, float, str]],
    labels: list[tuple[int, str, int]],
) -> Path:
    project = make_project(root, PACKAGE, nodes="", pipeline="return {}", catalog="")
    (project / "data").mkdir()
    (project / "data" / "labels.csv").write_text(labels_text(labels))
    if warehouse.server is not None:
        warehouse.server.execute(f"CREATE DATABASE `{warehouse.db}`")
    else:
        warehouse.path.mkdir(parents=True)
        subprocess.run(["dolt", "init"], cwd=warehouse.path, check=True, capture_output=True)
    warehouse.sql(
        "CREATE TABLE raw (id BIGINT PRIMARY KEY, x DOUBLE, y DOUBLE, g VARCHAR(8))",
        *raw_sql(raw),
        "CALL DOLT_COMMIT('-Am', 'raw data')",
    )
    render(project, warehouse, knobs)
    return project


def render(project: Path, warehouse: Warehouse, knobs: Knobs) -> None:
    """Write the project's code, catalog and params for ``knobs``."""
    src = project / "src" / PACKAGE
    (src / "helpers.py").write_text(HELPERS.format(helper_k=knobs.helper_k))
    (src / "nodes.py").write_text(
        NODES.format(bonus=knobs.bonus, prep_k=knobs.prep_k, cosmetic=COSMETIC[knobs.cosmetic])
    )
    inputs = '["filtered", "prepped"]' if knobs.swap else '["prepped", "filtered"]'
    body = PIPELINE.format(filter_t=knobs.filter_t, scaler_k=knobs.scaler_k, diff_inputs=inputs)
    (src / "pipeline_registry.py").write_text(
        "from kedro.pipeline import Pipeline, node, pipeline\n"
        f"from {PACKAGE}.nodes import *  # noqa: F403\n\n\n"
        "def register_pipelines():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    )
    # A stale .pyc (same size, same second) would hide a code change from the next import.
    shutil.rmtree(src / "__pycache__", ignore_errors=True)
    (project / "conf" / "base" / "parameters.yml").write_text(yaml.safe_dump(knobs.params()))
    (project / "conf" / "base" / "catalog.yml").write_text(
        yaml.safe_dump(catalog(project, warehouse, knobs))
    )


def catalog(project: Path, warehouse: Warehouse, knobs: Knobs) -> dict[str, Any]:
    where: dict[str, Any] = {"database": warehouse.args["database"]}
    if warehouse.server is not None:
        where["credentials"] = "dolt_server"
        (project / "conf" / "local" / "credentials.yml").write_text(
            f"dolt_server:\n  con: {warehouse.server.url()}\n"
        )
    entries: dict[str, Any] = {
        "raw": {"type": "kedro_dolt.DoltTableDataset", **where, "table": "raw"}
    }
    for name, key in DOLT_OUTPUTS.items():
        entries[name] = {
            "type": "kedro_dolt.DoltTableDataset",
            **where,
            "table": name,
            "save_args": {"primary_key": key},
        }
    for name, columns in [("raw", knobs.raw_columns), ("filtered", knobs.filtered_columns)]:
        if columns is not None:
            entries[name]["load_args"] = {"columns": list(columns)}
    entries["labels"] = {"type": "pandas.CSVDataset", **labels_config(project, knobs)}
    entries["summary"] = {"type": "pandas.CSVDataset", **summary_config(project, knobs)}
    return entries


def labels_config(project: Path, knobs: Knobs) -> dict[str, Any]:
    load_args: dict[str, Any] = {"sep": knobs.labels_sep}
    if knobs.labels_usecols is not None:
        load_args["usecols"] = list(knobs.labels_usecols)
    return {"filepath": str(project / "data" / "labels.csv"), "load_args": load_args}


def summary_config(project: Path, knobs: Knobs) -> dict[str, Any]:
    return {
        "filepath": str(project / "data" / "summary.csv"),
        "save_args": {"index": False, "sep": knobs.summary_sep},
    }


# -- runs ------------------------------------------------------------------------------------


_src_on_path: list[str] = []


def forget_project() -> None:
    """The project's package out of ``sys.modules`` and its source out of ``sys.path``."""
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    for path in _src_on_path:
        while path in sys.path:
            sys.path.remove(path)
    _src_on_path.clear()


@contextmanager
def fresh_project(project: Path) -> Iterator[None]:
    """The project's package imported anew from its files, as a new ``kedro run`` would
    (``bootstrap_project`` without its logging set-up and PYTHONPATH growth)."""
    from kedro.framework.project import configure_project

    forget_project()
    _src_on_path.append(str((project / "src").resolve()))
    sys.path.insert(0, _src_on_path[0])
    importlib.invalidate_caches()
    linecache.clearcache()  # inspect.getsource must read the files as they are now
    configure_project(PACKAGE, preserve_logging=True)
    yield


def run_in_process(project: Path) -> str:
    """An incremental run in this process through a KedroSession (hooks and all); its id."""
    from kedro.framework.session import KedroSession

    from kedro_dolt import IncrementalRunner

    with fresh_project(project):
        session: Any = KedroSession.create(project, save_on_close=False)
        with session:
            session.run(runner=IncrementalRunner())
            return str(session.session_id)


def run_subprocess(project: Path) -> str:
    """A real ``kedro run --runner kedro_dolt.IncrementalRunner``; its run id."""
    before = set(manifests(project))
    result = kedro_cli(
        project,
        "run",
        "--runner",
        "kedro_dolt.IncrementalRunner",
        env={"RAN_FILE": os.environ["RAN_FILE"], "PYTHONDONTWRITEBYTECODE": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"kedro run failed:\n{result.stdout}\n{result.stderr}")
    [new] = sorted(set(manifests(project)) - before)
    return new


def manifests(project: Path) -> list[str]:
    return [p.stem for p in (project / "data" / "kedro_dolt" / "runs").glob("*.json")]


def decisions(project: Path, run_id: str) -> dict[str, str]:
    """``node -> "action: reason"`` of a run, from its manifest."""
    path = project / "data" / "kedro_dolt" / "runs" / f"{run_id}.json"
    nodes = json.loads(path.read_text())["nodes"]
    return {n["node"]: f"{n['action']}: {n['reason']}" for n in nodes}


# -- the reference: every output computed from scratch ---------------------------------------


def reference(project: Path, warehouse: Warehouse, knobs: Knobs) -> dict[str, pd.DataFrame]:
    """Every output as a full run computes it from the current code, params and inputs:
    the raw inputs loaded as the catalog says, the nodes applied in topological order, each
    intermediate passed on as its consumers load it (``load_args.columns``)."""
    from kedro.framework.project import pipelines

    data: dict[str, Any] = {
        "raw": warehouse.table("raw", load_args={"columns": _cols(knobs.raw_columns)}).load(),
        "labels": CSVDataset(**labels_config(project, knobs)).load(),
        "params:factor": knobs.factor,
        "params:opts": knobs.params()["opts"],
    }
    outputs: dict[str, pd.DataFrame] = {}
    ran_file = os.environ["RAN_FILE"]
    os.environ["RAN_FILE"] = os.devnull
    try:
        with fresh_project(project):
            for node in pipelines["__default__"].nodes:  # topologically sorted
                produced = node.run({name: data[name] for name in node.inputs})
                for name, frame in produced.items():
                    outputs[name] = frame
                    data[name] = frame
                    if name == "filtered" and knobs.filtered_columns is not None:
                        data[name] = frame[list(knobs.filtered_columns)]
    finally:
        os.environ["RAN_FILE"] = ran_file
    return outputs


def _cols(columns: tuple[str, ...] | None) -> list[str] | None:
    return list(columns) if columns is not None else None


def actual(project: Path, warehouse: Warehouse) -> dict[str, pd.DataFrame | bytes | None]:
    """What the project holds for each output: the whole Dolt table (``dolt sql`` on a local
    repository, two processes for all tables; a load over MySQL on a server), the CSV's
    bytes; None when missing."""
    held: dict[str, pd.DataFrame | bytes | None] = dict.fromkeys(DOLT_OUTPUTS)
    path = project / "data" / "summary.csv"
    held["summary"] = path.read_bytes() if path.exists() else None
    if warehouse.server is not None:
        for name in DOLT_OUTPUTS:
            try:
                held[name] = warehouse.table(name).load()
            except DatasetError:
                held[name] = None
        return held
    columns: dict[str, list[str]] = {}
    query = (
        "SELECT table_name AS t, column_name AS c FROM information_schema.columns "
        "WHERE table_schema = DATABASE() ORDER BY ordinal_position"
    )
    for row in _json_results(warehouse, query)[0]:
        columns.setdefault(row["t"], []).append(row["c"])
    present = [name for name in DOLT_OUTPUTS if name in columns]
    if present:
        results = _json_results(warehouse, "; ".join(f"SELECT * FROM `{n}`" for n in present))
        for name, rows in zip(present, results, strict=True):
            held[name] = pd.DataFrame(rows, columns=columns[name])
    return held


def _json_results(warehouse: Warehouse, query: str) -> list[list[dict[str, Any]]]:
    out = subprocess.run(
        ["dolt", "sql", "-r", "json", "-q", query],
        cwd=warehouse.path,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return [json.loads(line).get("rows", []) for line in out.splitlines() if line.strip()]


def expected_bytes(project: Path, knobs: Knobs, frame: pd.DataFrame, scratch: Path) -> bytes:
    """The bytes a full run writes for the CSV output ``summary``."""
    config = {**summary_config(project, knobs), "filepath": str(scratch)}
    CSVDataset(**config).save(frame)
    return scratch.read_bytes()


def normalised(frame: pd.DataFrame, key: str) -> list[tuple[str, list[Any]]]:
    """Columns (sorted) and values in key order, numbers as rounded floats: what must match
    between a frame and the Dolt table it was saved to (dtypes may differ)."""
    frame = frame.sort_values(key).reset_index(drop=True)
    found: list[tuple[str, list[Any]]] = []
    for column in sorted(frame.columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            found.append((str(column), [round(float(v), 9) for v in values]))
        else:
            found.append((str(column), [str(v) for v in values]))
    return found
