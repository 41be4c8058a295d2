"""kedro-dolt in a user's own project, made by ``kedro new`` with its default logging: clean
``--json`` stdout, factory-pattern datasets, broken entries, and a hook that stays out of
projects without Dolt datasets."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kedro_dolt.versioning.commits import parse_trailers
from tests.conftest import dolt_rows
from tests.support.kedro_project import kedro_cli

PIPELINE = """
import pandas as pd
from kedro.pipeline import Pipeline, node, pipeline


def make_companies(n):
    return pd.DataFrame({"id": list(range(n)), "country": (["NL", "US"] * n)[:n]})


def count(companies):
    return companies.groupby("country").size().rename("n").reset_index()


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([
        node(make_companies, "params:n", "companies", name="make_companies"),
        node(count, "companies", "country_stats", name="count"),
    ])
"""

# `country_stats` exists only through the "{name}_stats" factory pattern.
CATALOG = """
companies:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: companies
  save_args: {primary_key: id}

"{name}_stats":
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: "{name}_stats"
  save_args: {primary_key: country}
"""

# An extra environment whose catalog adds a Dolt entry that cannot be built.
BROKEN_CATALOG = """
broken_table:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: "no;such table"
"""


def kedro_new(parent: Path, name: str) -> Path:
    """A project made by ``kedro new`` (offline template), with its default logging."""
    parent.mkdir(parents=True, exist_ok=True)
    result = kedro_cli(
        parent, "new", "--name", name, "--tools", "none", "--example", "no", "--telemetry", "no"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    project = parent / name.lower()
    assert (project / "pyproject.toml").is_file()
    assert not (project / "conf" / "logging.yml").exists()  # Kedro's own default logging
    return project


def add_pipeline(project: Path, package: str, name: str, code: str) -> None:
    pipe = project / "src" / package / "pipelines" / name
    pipe.mkdir(parents=True)
    (pipe / "__init__.py").write_text("from .pipeline import create_pipeline  # noqa: F401\n")
    (pipe / "pipeline.py").write_text(textwrap.dedent(code))


@pytest.fixture(scope="module")
def project(tmp_path_factory, dolt_home):
    """A ``kedro new`` project run twice (n=3, then n=5); returns (project, run ids)."""
    root = kedro_new(tmp_path_factory.mktemp("user"), "Demo")
    add_pipeline(root, "demo", "companies", PIPELINE)
    (root / "conf" / "base" / "catalog.yml").write_text(CATALOG)
    (root / "conf" / "base" / "parameters.yml").write_text("n: 3\n")
    (root / "conf" / "broken").mkdir()
    (root / "conf" / "broken" / "catalog.yml").write_text(BROKEN_CATALOG)
    for n in (3, 5):
        result = kedro_cli(root, "run", "--params", f"n={n}")
        assert result.returncode == 0, result.stdout + result.stderr
    messages = dolt_rows(root / "data" / "warehouse", "SELECT message FROM dolt_log")
    run_ids = sorted({parse_trailers(m["message"]).get("run_id") for m in messages} - {None})
    assert len(run_ids) == 2
    return root, run_ids


def dolt_json(project: Path, *args: str, kedro: list[str] | None = None):
    """``kedro dolt ARGS --json``: stdout must be exactly one JSON document."""
    if kedro is None:
        result = kedro_cli(project, "dolt", *args, "--json")
    else:  # the `kedro` console script instead of `python -m kedro`
        result = subprocess.run(
            [*kedro, "dolt", *args, "--json"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


class TestJsonStdout:
    def test_status(self, project):
        root, _ = project
        data = dolt_json(root, "status")
        assert [row["dataset"] for row in data] == ["companies", "country_stats"]

    def test_status_through_the_console_script(self, project):
        root, _ = project
        kedro = Path(sys.executable).with_name("kedro")
        assert kedro.is_file()
        data = dolt_json(root, "status", kedro=[str(kedro)])
        assert {row["table"] for row in data} == {"companies", "country_stats"}

    def test_log(self, project):
        root, run_ids = project
        data = dolt_json(root, "log")
        assert {row["run_id"] for row in data} == set(run_ids)

    def test_diff(self, project):
        root, _ = project
        data = dolt_json(root, "diff", "companies")
        assert (data["rows_added"], data["rows_modified"], data["rows_deleted"]) == (2, 0, 0)

    def test_changed(self, project):
        root, run_ids = project
        data = dolt_json(root, "changed", "--since", run_ids[0])
        assert data["changed"] == ["companies", "country_stats"]


class TestPatternDatasets:
    """``country_stats`` comes from the ``{name}_stats`` factory pattern."""

    def test_status(self, project):
        root, _ = project
        rows = {row["dataset"]: row for row in dolt_json(root, "status")}
        stats = rows["country_stats"]
        assert (stats["table"], stats["branch"], stats["table_exists"]) == (
            "country_stats",
            "main",
            True,
        )

    def test_log(self, project):
        root, run_ids = project
        data = dolt_json(root, "log", "country_stats")
        assert [(row["run_id"], row["node"]) for row in data] == [
            (run_ids[1], "count"),
            (run_ids[0], "count"),
        ]

    def test_diff(self, project):
        root, _ = project
        data = dolt_json(root, "diff", "country_stats")
        assert (data["rows_added"], data["rows_modified"], data["rows_deleted"]) == (0, 2, 0)
        assert {(r["to_country"], r["to_n"]) for r in data["rows"]} == {("NL", 3), ("US", 2)}

    def test_changed(self, project):
        root, run_ids = project
        data = dolt_json(root, "changed", "--since", run_ids[1])
        assert {d["dataset"]: d["changed"] for d in data["datasets"]} == {
            "companies": False,
            "country_stats": False,
        }


class TestBrokenEntry:
    def test_status_lists_it_and_fails(self, project):
        root, _ = project
        result = kedro_cli(root, "dolt", "status", "--env", "broken", "--json")
        assert result.returncode == 1, result.stdout + result.stderr
        rows = {row["dataset"]: row for row in json.loads(result.stdout)}
        assert set(rows) == {"broken_table", "companies", "country_stats"}
        assert "no;such table" in rows["broken_table"]["error"]
        assert "broken_table" in result.stderr

    def test_table_output_shows_it(self, project):
        root, _ = project
        result = kedro_cli(root, "dolt", "status", "--env", "broken")
        assert result.returncode == 1
        assert any(
            line.split()[:2] == ["broken_table", "-"] and "BROKEN" in line
            for line in result.stdout.splitlines()
        ), result.stdout

    def test_log_and_changed_still_answer_but_fail(self, project):
        root, run_ids = project
        for args in (["log"], ["changed", "--since", run_ids[0]]):
            result = kedro_cli(root, "dolt", *args, "--env", "broken", "--json")
            assert result.returncode == 1, args
            assert json.loads(result.stdout), args  # the healthy datasets are still reported
            assert "broken_table" in result.stderr

    def test_asking_for_it_by_name(self, project):
        root, _ = project
        for command in ("log", "diff"):
            result = kedro_cli(root, "dolt", command, "broken_table", "--env", "broken")
            assert result.returncode != 0
            assert "'broken_table' is broken" in result.stderr, result.stderr


PLAIN_PIPELINE = """
import logging

import pandas as pd
from kedro.pipeline import Pipeline, node, pipeline


def make():
    return pd.DataFrame({"id": [1, 2]})


def report(frame):
    # What the plugin may have changed: the kedro_dolt logger's level (NOTSET is 0).
    print("KEDRO_DOLT_LEVEL", logging.getLogger("kedro_dolt").level, len(frame))


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline([node(make, None, "frame"), node(report, "frame", None)])
"""


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` (bytecode caches aside) and its content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:
            continue
        found[str(path.relative_to(root))] = (
            hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
    return found


class TestDoltFreeProject:
    def test_hook_leaves_the_project_untouched(self, tmp_path):
        root = kedro_new(tmp_path, "Plain")
        add_pipeline(root, "plain", "main", PLAIN_PIPELINE)
        # kedro-viz (a dev dependency) has a hook that writes .viz/: keep only ours at play.
        with (root / "src" / "plain" / "settings.py").open("a") as settings:
            settings.write('\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)\n')
        before = tree(root)
        result = kedro_cli(root, "run")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "KEDRO_DOLT_LEVEL 0 2" in result.stdout  # no logger level set
        assert tree(root) == before
        # Control: the same project with one Dolt dataset does get the hook's manifest, so the
        # hook is installed and loaded here.
        (root / "conf" / "base" / "catalog.yml").write_text(
            "frame:\n  type: kedro_dolt.DoltTableDataset\n  database: data/wh\n  table: frame\n"
        )
        result = kedro_cli(root, "run", "--load-versions", "frame:main")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "KEDRO_DOLT_LEVEL 20 2" in result.stdout  # INFO: the hook's log lines show
        assert list((root / "data" / "kedro_dolt" / "runs").glob("*.json"))
        # Kedro ignores --load-versions for a dataset without `versioned: true`; we say so.
        output = " ".join((result.stdout + result.stderr).split())
        assert "--load-versions frame:main is ignored: frame is not versioned" in output


def test_importing_the_package_sets_no_logger_level():
    code = (
        "import logging, kedro_dolt, kedro_dolt.framework.hooks, kedro_dolt.framework.cli\n"
        "print(logging.getLogger('kedro_dolt').level, logging.root.level)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["0", "30"]  # NOTSET, and the root's default WARNING
