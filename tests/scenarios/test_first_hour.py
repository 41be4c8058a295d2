"""Issue 19: a real project's first hour, as the README tells it.

The wheel comes from `make dist`; it is installed with pip into a fresh environment, next to a
project made by `kedro new`. The project's pipeline runs on `pandas.ParquetDataset`, then the
intermediate dataset is swapped for a `kedro_dolt.DoltTableDataset` exactly as the README's
"Add kedro-dolt to your project" shows it: the frame the next node receives, and the model's
score computed from it, are the same (row order and index included).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tests.support import ROOT

PACKAGE = "first_hour"

NODES = '''
import numpy as np
import pandas as pd


def preprocess(raw: pd.DataFrame) -> pd.DataFrame:
    """Unsorted keys and a gappy index, as the tutorial's model_input_table has."""
    return raw.assign(ratio=raw["price"] / raw["size"]).dropna()


def train(table: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """A least-squares fit on the first 80 % of rows, scored on the rest: the score depends
    on the rows' order, as a train/test split does."""
    cut = int(len(table) * 0.8)
    train, test = table.iloc[:cut], table.iloc[cut:]
    slope, intercept = np.polyfit(train["size"], train["price"], 1)
    residual = test["price"] - (slope * test["size"] + intercept)
    r2 = 1 - (residual**2).sum() / ((test["price"] - test["price"].mean()) ** 2).sum()
    return {"r2": float(r2), "first_ids": table["id"].head(5).tolist()}, table
'''

PIPELINE = """
from kedro.pipeline import Pipeline, node

from .nodes import preprocess, train


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(preprocess, "raw", "model_input_table", name="preprocess"),
            node(train, "model_input_table", ["score", "seen"], name="train"),
        ]
    )
"""

CATALOG = """
raw:
  type: pandas.CSVDataset
  filepath: data/01_raw/raw.csv
score:
  type: json.JSONDataset
  filepath: data/08_reporting/score.json
seen:
  type: pickle.PickleDataset
  filepath: data/08_reporting/seen.pkl
"""

PARQUET = """
model_input_table:
  type: pandas.ParquetDataset
  filepath: data/03_primary/model_input_table.parquet
"""

#: Step 4 of the README's "Add kedro-dolt to your project", for this table.
DOLT = """
model_input_table:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: model_input_table
  save_args:
    primary_key: id
"""


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        " ".join(args) + "\n" + result.stdout[-3000:] + result.stderr[-3000:]
    )
    return result


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A fresh virtual environment with the wheel `make dist` builds, installed by pip."""
    work = tmp_path_factory.mktemp("first-hour")
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    run(["make", "dist", f"DIST={work / 'dist'}"], ROOT, env)
    [wheel] = (work / "dist").glob("kedro_dolt-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], work, env)
    run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], work, env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return venv, env


def make_project(root: Path, env: dict[str, str]) -> Path:
    run(
        [
            "kedro",
            "new",
            "--name",
            "First Hour",
            "--tools",
            "none",
            "--example",
            "no",
            "--telemetry",
            "no",
        ],
        root,
        env,
    )
    project = root / "first-hour"
    package = project / "src" / PACKAGE
    (package / "pipelines" / "model").mkdir(parents=True)
    (package / "pipelines" / "model" / "__init__.py").write_text(
        "from .pipeline import create_pipeline\n"
    )
    (package / "pipelines" / "model" / "nodes.py").write_text(NODES)
    (package / "pipelines" / "model" / "pipeline.py").write_text(PIPELINE)
    raw = pd.DataFrame(
        {
            "id": [17, 3, 42, 8, 25, 11, 30, 5, 19, 2, 33, 14],
            "size": [10.0, 12.0, None, 15.0, 9.0, 20.0, 22.0, None, 13.0, 18.0, 25.0, 11.0],
            "price": [101.0, 118, 140, 152, 95, 207, 226, 88, 129, 181, 252, 115],
        }
    )
    (project / "data" / "01_raw").mkdir(parents=True, exist_ok=True)
    raw.to_csv(project / "data" / "01_raw" / "raw.csv", index=False)
    return project


def outputs(project: Path) -> tuple[dict, pd.DataFrame]:
    reporting = project / "data" / "08_reporting"
    score = json.loads((reporting / "score.json").read_text())
    with open(reporting / "seen.pkl", "rb") as handle:
        seen = pickle.load(handle)
    return score, seen


def test_swapping_parquet_for_dolt_keeps_frames_and_results(environment, tmp_path):
    _, env = environment
    project = make_project(tmp_path, env)
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(textwrap.dedent(CATALOG) + textwrap.dedent(PARQUET))
    run(["kedro", "run"], project, env)
    parquet_score, parquet_seen = outputs(project)

    catalog.write_text(textwrap.dedent(CATALOG) + textwrap.dedent(DOLT))
    result = run(["kedro", "run"], project, env)
    dolt_score, dolt_seen = outputs(project)

    assert "Dolt: saved model_input_table" in result.stdout + result.stderr
    assert (project / "data" / "warehouse" / ".dolt").is_dir()
    pd.testing.assert_frame_equal(dolt_seen, parquet_seen)  # order and index included
    assert dolt_score == parquet_score
    # The gappy index after dropna() came back, not 0..n-1.
    assert list(dolt_seen.index) != list(range(len(dolt_seen)))
