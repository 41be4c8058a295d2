"""Build small, real Kedro projects in tmp dirs and run them with the real ``kedro`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import kedro

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{package}"
version = "0.1"

[tool.kedro]
package_name = "{package}"
project_name = "{package}"
kedro_init_version = "{kedro_version}"
source_dir = "src"
"""


def make_project(root: Path, package: str, *, nodes: str, pipeline: str, catalog: str) -> Path:
    """A Kedro project at ``root``: ``nodes`` is the nodes module, ``pipeline`` the body of
    ``register_pipelines`` (returning a dict), ``catalog`` the catalog.yml text."""
    src = root / "src" / package
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, kedro_version=kedro.__version__)
    )
    for conf in ("base", "local"):
        (root / "conf" / conf).mkdir(parents=True)
    (root / "conf" / "base" / "catalog.yml").write_text(textwrap.dedent(catalog))
    (root / "conf" / "base" / "parameters.yml").write_text("{}\n")
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(textwrap.dedent(nodes))
    (src / "pipeline_registry.py").write_text(
        "from kedro.pipeline import Pipeline, node, pipeline\n"
        f"from {package}.nodes import *  # noqa: F403\n\n\n"
        "def register_pipelines():\n" + textwrap.indent(textwrap.dedent(pipeline), "    ")
    )
    return root


def kedro_cli(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kedro ARGS`` in ``project`` (``env`` laid over this process's environment); the
    caller checks the exit code and output."""
    # A wide terminal keeps rich from wrapping log lines mid-word.
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "COLUMNS": "400",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# A small "companies" project used by the hook and CLI tests: three Dolt datasets, of which
# a second run with a larger n changes two (companies, company_stats) and not the third.
COMPANY_NODES = """
import json
import os

import pandas as pd


def make_companies(n):
    return pd.DataFrame({"id": list(range(n)), "name": [f"company {i}" for i in range(n)],
                         "country": ["NL", "US"] * (n // 2) + ["NL"] * (n % 2)})


def make_countries():
    return pd.DataFrame({"code": ["NL", "US"], "name": ["Netherlands", "United States"]})


def summarize(companies, countries, fail):
    if fail:
        raise RuntimeError("summarize failed on purpose")
    counts = companies.groupby("country").size().rename("companies").reset_index()
    return counts.merge(countries, left_on="country", right_on="code")[["country", "companies"]]


def collect(record):
    with open(os.environ["RECORDS_FILE"], "a") as handle:
        handle.write(json.dumps(record.to_dict()) + "\\n")
"""

COMPANY_PIPELINE = """
return {"__default__": pipeline([
    node(make_companies, "params:n", "companies", name="make_companies"),
    node(make_countries, None, "countries", name="make_countries"),
    node(summarize, ["companies", "countries", "params:fail"], "company_stats",
         name="summarize"),
])}
"""


def company_catalog(extra: str = "", database: str = "data/warehouse") -> str:
    """The catalog; ``extra`` is YAML added to every entry (indented by the caller)."""
    return "".join(
        f"""
{name}:
  type: kedro_dolt.DoltTableDataset
  database: {database}
  table: {name}
  save_args:
    primary_key: {key}
{extra}"""
        for name, key in [("companies", "id"), ("countries", "code"), ("company_stats", "country")]
    )


def company_project(root: Path, *, extra: str = "", database: str = "data/warehouse") -> Path:
    project = make_project(
        root,
        "companies_demo",
        nodes=COMPANY_NODES,
        pipeline=COMPANY_PIPELINE,
        catalog=company_catalog(extra, database),
    )
    (project / "conf" / "base" / "parameters.yml").write_text("n: 3\nfail: false\n")
    return project


def on_database(project: Path, repo: Path) -> Path:
    """Point every Dolt dataset in ``project``'s catalog (``database: data/warehouse``) at the
    test's ``repo``: a local repository, or a database on a dolt sql-server (then through
    the credentials entry ``dolt_server`` in conf/local/credentials.yml)."""
    catalog = project / "conf" / "base" / "catalog.yml"
    text = catalog.read_text()
    assert "database: data/warehouse" in text
    server = getattr(repo, "server", None)
    if server is not None:
        text = text.replace(
            "database: data/warehouse", f"database: {repo.db}\n  credentials: dolt_server"
        )
        (project / "conf" / "local" / "credentials.yml").write_text(
            f"dolt_server:\n  con: {server.url()}\n"
        )
    else:
        text = text.replace("database: data/warehouse", f"database: {repo}")
    catalog.write_text(text)
    return project
