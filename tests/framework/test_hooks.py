"""Real ``kedro run``s: lineage trailers, log lines, manifests, run-level branches, runners."""

from __future__ import annotations

import json
import logging
import re

import pandas as pd
import pytest

from kedro_dolt import ActionRecord, DoltTableDataset
from kedro_dolt.framework.hooks import DoltHooks, describe_action
from kedro_dolt.versioning.commits import parse_trailers
from tests.conftest import dolt_rows, state
from tests.support.kedro_project import company_project, kedro_cli, make_project, on_database

#: The tests taking ``repo`` run on the CLI and the server engine (see conftest).
BOTH_ENGINES = True

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
    def test_concurrent_nodes_all_land(self, tmp_path, runner, repo):
        project = make_project(
            tmp_path / "proj", "fan_out", nodes=NODES, pipeline=FAN_OUT, catalog=FAN_OUT_CATALOG
        )
        on_database(project, repo)
        (project / "conf" / "base" / "parameters.yml").write_text(
            "".join(f"seed_{i}: {i}\n" for i in range(4))
        )
        result = kedro_cli(project, "run", "--runner", runner)
        assert result.returncode == 0, result.stderr
        database = repo
        messages = save_commits(database)
        assert len(messages) == 4
        assert {parse_trailers(m["message"])["node"] for m in messages} == {
            f"make_table_{i}" for i in range(4)
        }
        for i in range(4):
            frame = DoltTableDataset(**repo.args, table=f"table_{i}").load()
            pd.testing.assert_series_equal(frame["seed"], pd.Series([i] * 5, name="seed"))


def manifests(project) -> list[dict]:
    runs = sorted((project / "data" / "kedro_dolt" / "runs").glob("*.json"))
    return [json.loads(p.read_text()) for p in runs]


def one_line(output: str) -> str:
    """Kedro's rich handler wraps long lines: join them back for matching."""
    return " ".join(output.split())


class TestRunLogs:
    def test_info_lines_summary_and_manifest(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        result = kedro_cli(project, "run")
        assert result.returncode == 0, result.stderr
        out = one_line(result.stdout + result.stderr)
        at = re.escape(f"{repo.name}@main")
        assert re.search(
            rf"Dolt: saved companies -> {at} \w{{7}}\.\.\w{{7}} \(\+3 ~0 -0 rows\)", out
        )
        assert re.search(rf"Dolt: loaded companies <- {at} \w{{7}} \(3 rows\)", out)
        assert f"Dolt summary for {repo.name}: branches main;" in out
        assert "companies (1 commits, +3 ~0 -0)" in out
        [manifest] = manifests(project)
        assert manifest["status"] == "completed"
        kinds = sorted((r["kind"], r["dataset"]) for r in manifest["records"])
        assert kinds == [
            ("load", "companies"),
            ("load", "countries"),
            ("save", "companies"),
            ("save", "company_stats"),
            ("save", "countries"),
        ]
        assert {r["run_id"] for r in manifest["records"]} == {manifest["run_id"]}
        assert f"Dolt run manifest: {project / 'data' / 'kedro_dolt' / 'runs'}" in out

    def test_second_run_reports_unchanged_and_diff_stats(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        assert kedro_cli(project, "run").returncode == 0
        result = kedro_cli(project, "run", "--params", "n=5")
        out = one_line(result.stdout + result.stderr)
        at = re.escape(f"{repo.name}@main")
        assert re.search(rf"Dolt: saved countries -> {at} \w{{7}} \(unchanged, no commit\)", out)
        assert re.search(
            rf"Dolt: saved companies -> {at} \w{{7}}\.\.\w{{7}} \(\+2 ~0 -0 rows\)", out
        )
        assert re.search(r"saved company_stats .*\(\+0 ~2 -0 rows\)", out)

    def test_manifest_under_parallel_runner(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        result = kedro_cli(project, "run", "--runner", "ParallelRunner")
        assert result.returncode == 0, result.stderr
        [manifest] = manifests(project)
        saves = [r for r in manifest["records"] if r["kind"] == "save"]
        assert sorted(r["dataset"] for r in saves) == ["companies", "company_stats", "countries"]
        assert len(manifest["records"]) == 5
        assert {r["node"] for r in saves} == {"make_companies", "make_countries", "summarize"}
        assert manifest["summary"][repo.location]["tables_written"].keys() == {
            "companies",
            "countries",
            "company_stats",
        }

    def test_manifest_dir_from_dolt_yml(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        (project / "conf" / "base" / "dolt.yml").write_text("manifest_dir: custom/manifests\n")
        assert kedro_cli(project, "run").returncode == 0
        assert len(list((project / "custom" / "manifests").glob("*.json"))) == 1


class TestRunBranch:
    def test_successful_run_merges_back(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        assert kedro_cli(project, "run").returncode == 0
        database = repo
        main_before = state(database).heads["main"]
        result = kedro_cli(project, "run", "--params", "n=5,dolt_branch=exp-42,dolt_merge=true")
        assert result.returncode == 0, result.stderr
        after = state(database)
        assert "exp-42" in after.heads and after.checked_out == "main"
        assert after.heads["main"] != main_before
        assert dolt_rows(database, "SELECT COUNT(*) AS n FROM companies")[0]["n"] == 5
        out = one_line(result.stdout + result.stderr)
        assert f"Dolt: merged run branch exp-42 into {repo.name}@main" in out
        saves = [r for r in manifests(project)[-1]["records"] if r["kind"] == "save"]
        assert {r["branch"] for r in saves} == {"exp-42"}
        assert {r["base_branch"] for r in saves} == {"main"}

    def test_failed_run_leaves_originals_untouched(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        assert kedro_cli(project, "run").returncode == 0
        database = repo
        main_before = state(database).heads["main"]
        result = kedro_cli(
            project, "run", "--params", "n=5,fail=true,dolt_branch=exp-43,dolt_merge=true"
        )
        assert result.returncode != 0
        after = state(database)
        assert after.heads["main"] == main_before
        assert "exp-43" in after.heads
        exp_count = dolt_rows(database, "SELECT COUNT(*) AS n FROM companies AS OF 'exp-43'")
        assert exp_count[0]["n"] == 5  # the partial data is on the run branch
        out = one_line(result.stdout + result.stderr)
        assert "the Dolt data it saved is on branch 'exp-43'" in out
        assert manifests(project)[-1]["status"] == "failed"

    def test_without_merge_the_run_branch_keeps_the_data(self, tmp_path, repo):
        project = on_database(company_project(tmp_path / "proj"), repo)
        assert kedro_cli(project, "run").returncode == 0
        database = repo
        main_before = state(database).heads["main"]
        assert kedro_cli(project, "run", "--params", "n=5,dolt_branch=exp-44").returncode == 0
        assert state(database).heads["main"] == main_before
        assert (
            dolt_rows(database, "SELECT COUNT(*) AS n FROM companies AS OF 'exp-44'")[0]["n"] == 5
        )


class TestCallbacks:
    def test_callback_receives_every_record(self, tmp_path, monkeypatch):
        records_file = tmp_path / "records.jsonl"
        monkeypatch.setenv("RECORDS_FILE", str(records_file))
        project = company_project(
            tmp_path / "proj", extra="  meta:\n    callback: companies_demo.nodes:collect\n"
        )
        assert kedro_cli(project, "run").returncode == 0
        received = [json.loads(line) for line in records_file.read_text().splitlines()]
        [manifest] = manifests(project)
        assert sorted((r["kind"], r["dataset"], r["to_commit"]) for r in received) == sorted(
            (r["kind"], r["dataset"], r["to_commit"]) for r in manifest["records"]
        )


class TestTruthfulLogs:
    """Issue 19: a log line says what was read; a summary says when nothing was written."""

    @staticmethod
    def record(**fields) -> ActionRecord:
        base = dict(
            kind="load",
            dataset="companies",
            database="/x/warehouse",
            table="companies",
            branch="main",
            ref=None,
            from_commit=None,
            to_commit="abcdefghij" * 3 + "ab",
            rows=3,
            strategy="append",
        )
        return ActionRecord(**{**base, **fields})

    @pytest.mark.parametrize(
        ("ref", "shown"),
        [
            (None, "warehouse@main"),
            ("main~2", "warehouse@main~2"),
            ("2026-11-24T07.01.12.421Z", "warehouse@2026-11-24T07.01.12.421Z"),
        ],
    )
    def test_a_load_names_the_ref_or_run_it_read(self, ref, shown):
        line = describe_action(self.record(ref=ref))
        assert f"<- {shown} abcdefg (3 rows)" in line

    def test_a_run_that_wrote_nothing_says_so(self, caplog, monkeypatch, tmp_path):
        monkeypatch.setenv("KEDRO_DOLT_MANIFEST_DIR", str(tmp_path))  # its manifest goes here
        caplog.set_level(logging.INFO, logger="kedro_dolt")
        DoltHooks()._finish({"run_id": "r"}, [self.record()], status="completed", merged=[])
        assert "no commits" in caplog.text
        assert "-..-" not in caplog.text

    def test_a_run_that_fails_before_dolt_leaves_no_files(self, tmp_path):
        project = company_project(tmp_path / "proj")
        result = kedro_cli(project, "run", env={"PATH": "/usr/bin:/bin", "KEDRO_DOLT_BINARY": ""})
        assert result.returncode != 0
        assert "install Dolt" in result.stdout + result.stderr
        assert not (project / "data" / "warehouse").exists()
        assert not (project / "data" / "kedro_dolt").exists()
