"""A spaceflights-size Kedro project (issue 24) on Dolt tables or on Parquet files.

Kedro's spaceflights shape at the tutorial size of ``kedro_projects.tutorial_inputs``: three
raw CSV files in ``data/01_raw`` (each project has its own copy), three intermediate tables
(Dolt or ``pandas.ParquetDataset``), an in-memory split, a linear model (a project class
around numpy ``lstsq`` coefficients, ``pickle.PickleDataset``), its metrics and three plots,
all versioned. The same in both projects but for the three tables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import kedro
from kedro_projects import PYPROJECT, TUTORIAL_NODES

# The tutorial project's preprocessing and model input table, unchanged (up to its model).
DATA_PROCESSING = TUTORIAL_NODES[: TUTORIAL_NODES.index("\n\nFEATURES")] + "\n"

DATA_SCIENCE = """
import numpy as np
import pandas as pd


class LinearModel:
    \"\"\"Least-squares coefficients over the features, with an intercept.\"\"\"

    def __init__(self, coef):
        self.coef = coef

    @staticmethod
    def design(x):
        values = x.astype(float).to_numpy()
        return np.column_stack([values, np.ones(len(values))])

    def predict(self, x):
        return self.design(x) @ self.coef


def split_data(data, parameters):
    x = data[parameters["features"]]
    y = data["price"]
    order = np.random.default_rng(parameters["random_state"]).permutation(len(data))
    n_test = int(round(len(data) * parameters["test_size"]))
    test, train = order[:n_test], order[n_test:]
    return x.iloc[train], x.iloc[test], y.iloc[train], y.iloc[test]


def train_model(x_train, y_train):
    coef, *_ = np.linalg.lstsq(LinearModel.design(x_train), y_train.to_numpy(), rcond=None)
    return LinearModel(coef)


def evaluate_model(regressor, x_test, y_test):
    actual = y_test.to_numpy()
    error = actual - regressor.predict(x_test)
    return {
        "r2_score": float(1 - (error**2).sum() / ((actual - actual.mean()) ** 2).sum()),
        "mae": float(np.abs(error).mean()),
        "max_error": float(np.abs(error).max()),
    }
"""

REPORTING = """
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def compare_passenger_capacity_go(preprocessed_shuttles):
    means = preprocessed_shuttles.groupby("shuttle_type")["passenger_capacity"].mean()
    return go.Figure(
        data=[go.Bar(x=list(means.index), y=list(means.values))],
        layout={"title": "Average passenger capacity by shuttle type"},
    )


def compare_company_rating_exp(preprocessed_companies):
    means = (
        preprocessed_companies.groupby("company_location")["company_rating"].mean().reset_index()
    )
    return px.bar(means, x="company_location", y="company_rating", title="Rating by location")


def residual_chart(regressor, x_test, y_test):
    \"\"\"A Vega-Lite histogram of the test residuals (a chart spec, no plotting library).\"\"\"
    residual = (y_test.to_numpy() - regressor.predict(x_test)).round(1)
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{"residual": float(r)} for r in residual[:2000]]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "residual", "bin": {"maxbins": 40}},
            "y": {"aggregate": "count"},
        },
    }


def noop():
    return 0
"""

PIPELINE = """
from kedro.pipeline import Pipeline, node

from {package}.data_processing import (create_model_input_table, preprocess_companies,
                                       preprocess_shuttles)
from {package}.data_science import evaluate_model, split_data, train_model
from {package}.reporting import (compare_company_rating_exp, compare_passenger_capacity_go,
                                 noop, residual_chart)


def register_pipelines():
    data_processing = Pipeline([
        node(preprocess_companies, "companies", "preprocessed_companies", name="companies"),
        node(preprocess_shuttles, "shuttles", "preprocessed_shuttles", name="shuttles"),
        node(create_model_input_table,
             ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
             "model_input_table", name="model_input"),
    ])
    data_science = Pipeline([
        node(split_data, ["model_input_table", "params:model_options"],
             ["X_train", "X_test", "y_train", "y_test"], name="split"),
        node(train_model, ["X_train", "y_train"], "regressor", name="train"),
        node(evaluate_model, ["regressor", "X_test", "y_test"], "metrics", name="evaluate"),
    ])
    reporting = Pipeline([
        node(compare_passenger_capacity_go, "preprocessed_shuttles",
             "shuttle_passenger_capacity_plot", name="capacity_plot"),
        node(compare_company_rating_exp, "preprocessed_companies", "company_rating_plot",
             name="rating_plot"),
        node(residual_chart, ["regressor", "X_test", "y_test"], "residual_chart",
             name="residual_plot"),
    ])
    return {{
        "__default__": data_processing + data_science + reporting,
        # Kedro refuses an empty pipeline: its start with one trivial in-memory node.
        "empty": Pipeline([node(noop, None, "nothing", name="noop")]),
    }}
"""

PARAMETERS = """\
model_options:
  test_size: {test_size}
  random_state: 3
  features: [engines, passenger_capacity, crew, d_check_complete, moon_clearance_complete,
             iata_approved, company_rating, review_scores_rating]
"""

RAW = ("companies", "shuttles", "reviews")
# table -> its key (the README's advice: with a key a save writes only the changed rows; a
# keyless table is rewritten whole when a row changes)
TABLES = {
    "preprocessed_companies": "id",
    "preprocessed_shuttles": "id",
    "model_input_table": "shuttle_id",
}

OUTPUTS = """\
regressor:
  type: pickle.PickleDataset
  filepath: data/06_models/regressor.pickle
  versioned: true
metrics:
  type: json.JSONDataset
  filepath: data/09_tracking/metrics.json
  versioned: true
shuttle_passenger_capacity_plot:
  type: plotly.JSONDataset
  filepath: data/08_reporting/shuttle_passenger_capacity_plot.json
  versioned: true
company_rating_plot:
  type: plotly.HTMLDataset
  filepath: data/08_reporting/company_rating_plot.html
  versioned: true
residual_chart:
  type: json.JSONDataset
  filepath: data/08_reporting/residual_chart.json
  versioned: true
"""

# node -> what it reads; the nodes downstream of a change are computed from this
NODE_INPUTS = {
    "companies": ["companies"],
    "shuttles": ["shuttles"],
    "model_input": ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
    "split": ["model_input_table", "params:model_options"],
    "train": ["X_train", "y_train"],
    "evaluate": ["regressor", "X_test", "y_test"],
    "capacity_plot": ["preprocessed_shuttles"],
    "rating_plot": ["preprocessed_companies"],
    "residual_plot": ["regressor", "X_test", "y_test"],
}
NODE_OUTPUTS = {
    "companies": ["preprocessed_companies"],
    "shuttles": ["preprocessed_shuttles"],
    "model_input": ["model_input_table"],
    "split": ["X_train", "X_test", "y_train", "y_test"],
    "train": ["regressor"],
    "evaluate": ["metrics"],
    "capacity_plot": ["shuttle_passenger_capacity_plot"],
    "rating_plot": ["company_rating_plot"],
    "residual_plot": ["residual_chart"],
}


def downstream(changed: str) -> list[str]:
    """The nodes that read ``changed`` or anything computed from it, in pipeline order."""
    dirty, nodes = {changed}, []
    for name, inputs in NODE_INPUTS.items():  # listed in topological order
        if dirty.intersection(inputs):
            nodes.append(name)
            dirty.update(NODE_OUTPUTS[name])
    return nodes


def table_entry(name: str, kind: str, keys: bool = True) -> str:
    if kind == "dolt":
        key = f"  save_args:\n    primary_key: {TABLES[name]}\n" if keys else ""
        return (
            f"{name}:\n  type: kedro_dolt.DoltTableDataset\n  database: data/warehouse\n"
            f"  table: {name}\n{key}"
        )
    return f"{name}:\n  type: pandas.ParquetDataset\n  filepath: data/03_primary/{name}.parquet\n"


def parameters(test_size: float = 0.2) -> str:
    return PARAMETERS.format(test_size=test_size)


def build_spaceflights(root: Path, kind: str, inputs: Path, *, keys: bool = True) -> Path:
    """The project in ``root`` with its three tables on ``kind`` ("dolt" or "parquet"), Dolt
    tables keyed unless ``keys`` is false; the raw CSV files of ``inputs``
    (``tutorial_inputs``) are copied to ``data/01_raw``."""
    package = f"spaceflights_{kind}"
    src = root / "src" / package
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, kedro_version=kedro.__version__)
    )
    for conf in ("base", "local"):
        (root / "conf" / conf).mkdir(parents=True)
    raw = "".join(
        f"{name}:\n  type: pandas.CSVDataset\n  filepath: data/01_raw/{name}.csv\n" for name in RAW
    )
    tables = "".join(table_entry(name, kind, keys) for name in TABLES)
    (root / "conf" / "base" / "catalog.yml").write_text(raw + tables + OUTPUTS)
    (root / "conf" / "base" / "parameters.yml").write_text(parameters())
    (root / "data" / "01_raw").mkdir(parents=True)
    for name in RAW:
        shutil.copy2(inputs / f"{name}.csv", root / "data" / "01_raw" / f"{name}.csv")
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "data_processing.py").write_text(DATA_PROCESSING)
    (src / "data_science.py").write_text(DATA_SCIENCE)
    (src / "reporting.py").write_text(REPORTING)
    (src / "pipeline_registry.py").write_text(PIPELINE.format(package=package))
    return root
