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


# -- a tutorial-size project (issue 18): spaceflights' shape, three tables of 30-80k rows ------

TUTORIAL_ROWS = 77_000

TUTORIAL_NODES = """
import numpy as np
import pandas as pd


def _pick(rng, values, n):
    return pd.Series(np.array(values, dtype=object)[rng.integers(0, len(values), n)], dtype="str")


def preprocess_companies(companies):
    out = companies.copy()
    out["iata_approved"] = out["iata_approved"] == "t"
    out["company_rating"] = out["company_rating"].str.replace("%", "").astype(float) / 100
    return out


def preprocess_shuttles(shuttles):
    out = shuttles.copy()
    for column in ("d_check_complete", "moon_clearance_complete"):
        out[column] = out[column] == "t"
    out["price"] = out["price"].str.replace("[$,]", "", regex=True).astype(float)
    return out


def create_model_input_table(shuttles, companies, reviews):
    table = shuttles.merge(reviews, left_on="id", right_on="shuttle_id")
    table = table.drop(columns="id").merge(companies, left_on="company_id", right_on="id")
    return table.dropna().reset_index(drop=True)


FEATURES = ["engines", "passenger_capacity", "crew", "d_check_complete",
            "moon_clearance_complete", "iata_approved", "company_rating",
            "review_scores_rating"]


def train_model(table):
    x = table[FEATURES].astype(float).to_numpy()
    x = np.column_stack([x, np.ones(len(x))])
    train = slice(None, len(x) * 4 // 5)
    coef, *_ = np.linalg.lstsq(x[train], table["price"].to_numpy()[train], rcond=None)
    return coef


def evaluate_model(coef, table):
    x = table[FEATURES].astype(float).to_numpy()
    x = np.column_stack([x, np.ones(len(x))])
    test = slice(len(x) * 4 // 5, None)
    residual = table["price"].to_numpy()[test] - x[test] @ coef
    return {"rmse": float(np.sqrt(np.mean(residual ** 2)))}
"""

TUTORIAL_PIPELINE = """\
from kedro.pipeline import Pipeline, node

from {package}.nodes import (create_model_input_table, evaluate_model, preprocess_companies,
                             preprocess_shuttles, train_model)


def register_pipelines():
    return {{"__default__": Pipeline([
        node(preprocess_companies, "companies", "preprocessed_companies", name="companies"),
        node(preprocess_shuttles, "shuttles", "preprocessed_shuttles", name="shuttles"),
        node(create_model_input_table,
             ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
             "model_input_table", name="model_input"),
        node(train_model, "model_input_table", "regressor", name="train"),
        node(evaluate_model, ["regressor", "model_input_table"], "metrics", name="evaluate"),
    ])}}
"""


def tutorial_inputs(data: Path, rows: int = TUTORIAL_ROWS) -> None:
    """Spaceflights-like raw CSV files (the inputs stay CSV in both projects)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)

    def pick(values: list[str], n: int) -> np.ndarray:
        return np.array(values, dtype=object)[rng.integers(0, len(values), n)]

    n = rows
    companies = pd.DataFrame(
        {
            "id": np.arange(n),
            "company_rating": [f"{v}%" for v in rng.integers(50, 101, n)],
            "company_location": pick(["Niue", "Anguilla", "Russian Federation", "Barbados"], n),
            "total_fleet_count": rng.integers(1, 20, n).astype(float),
            "iata_approved": pick(["t", "f"], n),
        }
    )
    shuttles = pd.DataFrame(
        {
            "id": np.arange(n),
            "shuttle_location": pick(["Sao Tome and Principe", "Wallis and Futuna", "Niue"], n),
            "shuttle_type": pick(["Type V5", "Type F5", "Type V2"], n),
            "engine_type": pick(["Quantum", "Plasma", "Nuclear"], n),
            "engine_vendor": pick(["ThetaBase Services", "Banks, Wood and Phillips"], n),
            "engines": rng.integers(1, 5, n).astype(float),
            "passenger_capacity": rng.integers(1, 10, n),
            "cancellation_policy": pick(["strict", "moderate", "flexible"], n),
            "crew": rng.integers(1, 8, n).astype(float),
            "d_check_complete": pick(["t", "f"], n),
            "moon_clearance_complete": pick(["t", "f"], n),
            "price": [f"${v:,.1f}" for v in rng.integers(500, 8000, n)],
            "company_id": rng.integers(0, n, n),
        }
    )
    shuttles.loc[rng.random(n) < 0.05, "engines"] = np.nan
    reviews = pd.DataFrame(
        {
            "shuttle_id": rng.permutation(n)[: n * 2 // 5],
            **{
                f"review_scores_{k}": rng.integers(1, 11, n * 2 // 5).astype(float)
                for k in ("rating", "comfort", "amenities", "trip", "crew", "location", "price")
            },
            "number_of_reviews": rng.integers(0, 500, n * 2 // 5),
            "reviews_per_month": rng.random(n * 2 // 5) * 10,
        }
    )
    data.mkdir(parents=True, exist_ok=True)
    companies.to_csv(data / "companies.csv", index=False)
    shuttles.to_csv(data / "shuttles.csv", index=False)
    reviews.to_csv(data / "reviews.csv", index=False)


def tutorial_entry(name: str, kind: str) -> str:
    if kind == "dolt":
        return (
            f"{name}:\n  type: kedro_dolt.DoltTableDataset\n  database: data/warehouse\n"
            f"  table: {name}\n"
        )
    return f"{name}:\n  type: pandas.ParquetDataset\n  filepath: data/{name}.parquet\n"


def build_tutorial(root: Path, kind: str, inputs: Path) -> Path:
    """The tutorial-size project: raw CSV in, three intermediate tables on Dolt or Parquet,
    a linear model (pickle) and its metrics."""
    package = f"tutorial_{kind}"
    src = root / "src" / package
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, kedro_version=kedro.__version__)
    )
    for conf in ("base", "local"):
        (root / "conf" / conf).mkdir(parents=True)
    raw = "".join(
        f"{name}:\n  type: pandas.CSVDataset\n  filepath: {inputs / (name + '.csv')}\n"
        for name in ("companies", "shuttles", "reviews")
    )
    tables = "".join(
        tutorial_entry(name, kind)
        for name in ("preprocessed_companies", "preprocessed_shuttles", "model_input_table")
    )
    model = "regressor:\n  type: pickle.PickleDataset\n  filepath: data/regressor.pickle\n"
    metrics = "metrics:\n  type: json.JSONDataset\n  filepath: data/metrics.json\n"
    (root / "conf" / "base" / "catalog.yml").write_text(raw + tables + model + metrics)
    (root / "data").mkdir()
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(TUTORIAL_NODES)
    (src / "pipeline_registry.py").write_text(TUTORIAL_PIPELINE.format(package=package))
    return root
