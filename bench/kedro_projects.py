"""Two tiny Kedro projects for the `kedro run` rows: 10 chained nodes on Dolt or Parquet."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import kedro

ROWS = 1_000
NODES = 10

NODES_MODULE = """
import numpy as np
import pandas as pd


def make(rows):
    rng = np.random.default_rng(0)
    name = pd.Series(np.array(["alpha", "beta", "gamma"], dtype=object)[
        rng.integers(0, 3, rows)], dtype="str")
    name[rng.random(rows) < 0.05] = None
    score = pd.array(rng.integers(0, 10**6, rows), dtype="Int64")
    score[rng.random(rows) < 0.1] = pd.NA
    return pd.DataFrame({
        "id": np.arange(rows, dtype="int64"),
        "amount": rng.normal(100, 30, rows),
        "name": name,
        "created": (pd.Timestamp("2026-01-01")
                    + pd.to_timedelta(rng.integers(0, 10**12, rows), unit="us")
                    ).astype("datetime64[ns]"),
        "flag": rng.random(rows) < 0.5,
        "score": score,
    })


def step(frame):
    return frame.assign(amount=frame["amount"] * 1.01)
"""

PIPELINE = """\
from kedro.pipeline import Pipeline, node

from {package}.nodes import make, step


def register_pipelines():
    nodes = [node(make, "params:rows", "d0", name="n0")]
    nodes += [node(step, f"d{{i - 1}}", f"d{{i}}", name=f"n{{i}}") for i in range(1, {nodes})]
    return {{"__default__": Pipeline(nodes)}}
"""

PYPROJECT = """\
[project]
name = "{package}"
version = "0.1"

[tool.kedro]
package_name = "{package}"
project_name = "{package}"
kedro_init_version = "{kedro_version}"
source_dir = "src"
"""


def catalog_entry(name: str, kind: str) -> str:
    if kind == "dolt":
        return textwrap.dedent(
            f"""\
            {name}:
              type: kedro_dolt.DoltTableDataset
              database: data/warehouse
              table: {name}
              save_args:
                primary_key: id
            """
        )
    return f"{name}:\n  type: pandas.ParquetDataset\n  filepath: data/{name}.parquet\n"


def build(root: Path, kind: str) -> Path:
    """A Kedro project whose 10 chained nodes each save a 1k-row frame (Dolt or Parquet)."""
    package = f"bench_{kind}"
    src = root / "src" / package
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, kedro_version=kedro.__version__)
    )
    for conf in ("base", "local"):
        (root / "conf" / conf).mkdir(parents=True)
    catalog = "".join(catalog_entry(f"d{i}", kind) for i in range(NODES))
    (root / "conf" / "base" / "catalog.yml").write_text(catalog)
    (root / "conf" / "base" / "parameters.yml").write_text(f"rows: {ROWS}\n")
    (root / "data").mkdir()
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(NODES_MODULE)
    (src / "pipeline_registry.py").write_text(PIPELINE.format(package=package, nodes=NODES))
    return root


def run(project: Path) -> None:
    """``kedro run`` in ``project``, in a child process; raise on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "kedro", "run"],
        cwd=project,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kedro run failed in {project}:\n{proc.stderr[-3000:]}")
