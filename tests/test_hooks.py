"""Real ``kedro run``s: lineage trailers from the hooks, and concurrent runners."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from kedro_dolt import DoltTableDataset
from kedro_dolt.commits import parse_trailers
from tests.conftest import dolt_rows
from tests.kedro_project import kedro_cli, make_project

NODES = """
import pandas as pd


def make_companies():
    return pd.DataFrame({"id": [1, 2, 3], "name": ["Acme", "Globex", "Initech"]})


def count(companies):
    return pd.DataFrame({"n": [len(companies)]})


def make_table(seed):
    return pd.DataFrame({"id": list(range(5)), "seed": [seed] * 5})
"""

LINEAR = """
return {"__default__": pipeline([
    node(make_companies, None, "companies", name="make_companies"),
    node(count, "companies", "company_count", name="count_companies"),
])}
"""

CATALOG = """
companies:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: companies
  save_args:
    primary_key: id
company_count:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: company_count
"""

FAN_OUT = """
return {"__default__": pipeline([
    node(make_table, f"params:seed_{i}", f"table_{i}", name=f"make_table_{i}") for i in range(4)
])}
"""

FAN_OUT_CATALOG = "\n".join(
    f"""
table_{i}:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: table_{i}
  save_args:
    primary_key: id
"""
    for i in range(4)
)


def save_commits(database) -> list[dict]:
    return dolt_rows(database, "SELECT message FROM dolt_log WHERE message LIKE 'kedro: save%'")


class TestRunContext:
    def test_commits_carry_run_id_node_and_dataset(self, tmp_path):
        project = make_project(
            tmp_path / "proj", "lineage_demo", nodes=NODES, pipeline=LINEAR, catalog=CATALOG
        )
        result = kedro_cli(project, "run")
        assert result.returncode == 0, result.stderr
        database = project / "data" / "warehouse"  # relative to the project root
        messages = [m["message"] for m in save_commits(database)]
        assert [m.splitlines()[0] for m in messages] == [
            "kedro: save company_count (node: count_companies)",
            "kedro: save companies (node: make_companies)",
        ]
        trailers = [parse_trailers(m) for m in messages]
        assert {t["dataset"] for t in trailers} == {"companies", "company_count"}
        assert {t["node"] for t in trailers} == {"make_companies", "count_companies"}
        run_ids = {t["run_id"] for t in trailers}
        assert len(run_ids) == 1
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z", run_ids.pop())
        assert all(t["pipeline"] == "__default__" for t in trailers)
        count = DoltTableDataset(database=str(database), table="company_count").load()
        assert count["n"].tolist() == [3]

    def test_disabled_hooks_leave_plain_messages(self, tmp_path):
        project = make_project(
            tmp_path / "proj", "no_hooks", nodes=NODES, pipeline=LINEAR, catalog=CATALOG
        )
        (project / "src" / "no_hooks" / "settings.py").write_text(
            'DISABLE_HOOKS_FOR_PLUGINS = ("kedro-dolt",)\n'
        )
        result = kedro_cli(project, "run")
        assert result.returncode == 0, result.stderr
        messages = [m["message"] for m in save_commits(project / "data" / "warehouse")]
        assert [m.splitlines()[0] for m in messages] == [
            "kedro: save company_count",
            "kedro: save companies",
        ]
        assert all("run_id" not in parse_trailers(m) for m in messages)


class TestRunners:
    @pytest.mark.parametrize("runner", ["ParallelRunner", "ThreadRunner"])
    def test_concurrent_nodes_all_land(self, tmp_path, runner):
        project = make_project(
            tmp_path / "proj", "fan_out", nodes=NODES, pipeline=FAN_OUT, catalog=FAN_OUT_CATALOG
        )
        (project / "conf" / "base" / "parameters.yml").write_text(
            "".join(f"seed_{i}: {i}\n" for i in range(4))
        )
        result = kedro_cli(project, "run", "--runner", runner)
        assert result.returncode == 0, result.stderr
        database = project / "data" / "warehouse"
        messages = save_commits(database)
        assert len(messages) == 4
        assert {parse_trailers(m["message"])["node"] for m in messages} == {
            f"make_table_{i}" for i in range(4)
        }
        for i in range(4):
            frame = DoltTableDataset(database=str(database), table=f"table_{i}").load()
            pd.testing.assert_series_equal(frame["seed"], pd.Series([i] * 5, name="seed"))
