"""Real ``kedro run --runner kedro_dolt.IncrementalRunner`` processes on real Dolt: every rule
of what is skipped, restored and run (README, "Incremental runs")."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from kedro_dolt.framework.incremental.memo import MEMO_BRANCH, MEMO_TABLE, MemoEntry
from kedro_dolt.versioning.commits import parse_trailers
from tests.conftest import dolt, dolt_rows
from tests.support.incremental_project import NODES, incremental_project, run, run_may_fail
from tests.support.kedro_project import kedro_cli

ALL = ["double", "to_memory", "from_memory", "total", "report", "stamp"]
# The node that runs every time: the always_run tag (the in-memory chain to_memory ->
# from_memory skips as a unit).
ALWAYS = ["stamp"]
MEMORY_CHAIN = ["to_memory", "from_memory"]


@pytest.fixture(scope="module")
def after_first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = incremental_project(tmp_path_factory.mktemp("template") / "p")
    ran, _ = run(project)
    assert ran == ALL  # nothing to go by yet: everything runs
    return project


@pytest.fixture
def project(after_first_run: Path, tmp_path: Path) -> Path:
    """The project after its first run (memos kept), copied for this test."""
    return Path(shutil.copytree(after_first_run, tmp_path / "p", symlinks=True))


def reasons(log: str) -> dict[str, str]:
    """``node -> "action: reason"`` from the run's log lines."""
    found = {}
    for line in log.splitlines():
        if "kedro-dolt incremental: " in line:
            text = line.split("kedro-dolt incremental: ", 1)[1].split("  ")[0].strip()
            action, _, rest = text.partition(" ")
            node, _, reason = rest.partition(": ")
            if action in ("run", "skip", "restore"):
                found[node.split(" ")[0]] = f"{action}: {reason}"
    return found


def plan(project: Path, *args: str) -> dict[str, dict]:
    result = kedro_cli(project, "dolt", "plan", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return {n["node"]: n for n in json.loads(result.stdout)["nodes"]}


def warehouse(project: Path) -> Path:
    return project / "data" / "warehouse"


def sql(project: Path, query: str) -> None:
    dolt(warehouse(project), "sql", "-q", query)


def table(project: Path, name: str) -> list[dict]:
    return dolt_rows(warehouse(project), f"SELECT * FROM `{name}` ORDER BY 1")


def test_an_unchanged_rerun_skips_and_the_plan_says_so(project):
    planned = plan(project)
    assert {n: p["action"] for n, p in planned.items()} == {
        **{n: "skip" for n in ALL},
        **{n: "run" for n in ALWAYS},
    }
    assert "in-memory outputs are made only if" in planned["to_memory"]["reason"]
    assert "always-run" in planned["stamp"]["reason"]
    ran, log = run(project)
    assert ran == ALWAYS
    assert reasons(log)["double"].startswith("skip: fresh (memo of run ")
    # The run manifest lists every node with what happened to it.
    [manifest] = sorted((project / "data" / "kedro_dolt" / "runs").glob("*.json"))[-1:]
    nodes = {n["node"]: n["action"] for n in json.loads(manifest.read_text())["nodes"]}
    assert nodes["double"] == "skip" and nodes["stamp"] == "run"
    # Memos live on their own branch; the data branch has no memo table.
    assert MEMO_TABLE not in dolt(warehouse(project), "ls")
    assert (
        dolt_rows(
            warehouse(project), f"SELECT COUNT(*) AS n FROM `{MEMO_TABLE}` AS OF '{MEMO_BRANCH}'"
        )[0]["n"]
        >= 3
    )


def test_a_comment_only_edit_skips_a_code_edit_reruns_it_and_its_consumers(project):
    nodes = project / "src" / "inc_demo" / "nodes.py"
    nodes.write_text(
        NODES.replace(
            "def double(raw, factor):\n",
            'def double(raw, factor):  # tidy\n    """Double x."""\n    # a comment\n',
        )
    )
    ran, _ = run(project)
    assert ran == ALWAYS
    helpers = project / "src" / "inc_demo" / "helpers.py"
    helpers.write_text(helpers.read_text().replace("values * factor", "values * factor + 1"))
    assert plan(project)["double"]["reason"] == "code changed"
    ran, log = run(project)
    assert ran == ["double", "total", "report", "stamp"]
    assert reasons(log)["double"] == "run: code changed"
    assert reasons(log)["total"].startswith("run: input 'doubled' changed ")


def test_a_params_change_reruns(project):
    ran, log = run(project, "--params", "factor=3")
    assert ran == ["double", "total", "report", "stamp"]
    assert reasons(log)["double"] == "run: params changed (params:factor)"


def test_input_changed_by_sql_reruns_and_a_revert_restores(project):
    first = table(project, "doubled")
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit raw');")
    planned = plan(project)
    assert planned["double"]["reason"].startswith("input 'raw' changed ")
    assert "written by node double first" in planned["total"]["reason"]
    ran, log = run(project)
    # raw changed: to_memory's in-memory output is another, so from_memory runs and needs it.
    assert ran == ["double", *MEMORY_CHAIN, "total", "report", "stamp"]
    assert "is needed by node from_memory, which runs" in reasons(log)["to_memory"]
    assert table(project, "doubled") != first
    sql(project, "UPDATE raw SET x = 1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'revert raw');")
    planned = plan(project)
    assert planned["double"]["action"] == "restore"
    assert planned["total"]["action"] == "restore"  # planned at its restored input version
    ran, log = run(project)
    # double and total are restored from history, report's CSV from its kept copy; the
    # in-memory chain matches its first run's memo again.
    assert ran == ALWAYS
    assert reasons(log)["double"].startswith("restore: ")
    assert reasons(log)["report"].startswith("restore: ")
    assert table(project, "doubled") == first
    full = dolt(warehouse(project), "log", "-n", "1", "--", "doubled")
    assert parse_trailers(full).get("restored_from")  # the run the version comes from
    ran, _ = run(project)
    assert ran == ALWAYS  # the restored versions are fresh


def test_an_input_changed_by_a_merge_reruns(project):
    sql(
        project,
        "CALL DOLT_CHECKOUT('-b', 'feature'); UPDATE raw SET x = 7 WHERE id = 2; "
        "CALL DOLT_COMMIT('-am', 'on feature'); CALL DOLT_CHECKOUT('main'); "
        "CALL DOLT_MERGE('feature');",
    )
    ran, log = run(project)
    assert "double" in ran
    assert reasons(log)["double"].startswith("run: input 'raw' changed ")


def test_an_output_edited_or_dropped_by_hand_reruns(project):
    sql(project, "UPDATE doubled SET x = -1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'by hand');")
    ran, log = run(project)
    assert "double" in ran
    assert "changed outside the pipeline" in reasons(log)["double"]
    sql(project, "DROP TABLE totals; CALL DOLT_COMMIT('-am', 'dropped');")
    ran, log = run(project)
    assert ran == ["total", "stamp"]  # totals rewritten the same: report fresh
    assert "changed outside the pipeline" in reasons(log)["total"]


def test_early_cutoff_an_unchanged_result_leaves_consumers_fresh(project):
    # Swapping two values changes `doubled` but not its sum: total reruns, writes the same
    # totals table, and report stays fresh.
    sql(project, "UPDATE raw SET x = 4 - x WHERE id IN (1, 3); CALL DOLT_COMMIT('-am', 'swap');")
    ran, log = run(project)
    assert ran == ["double", *MEMORY_CHAIN, "total", "stamp"]
    assert reasons(log)["report"].startswith("skip: fresh")


def test_a_file_input_change_reruns_its_consumer(project):
    (project / "data" / "labels.csv").write_text("label\na\nb\nc\n")
    ran, log = run(project)
    assert ran == ["report", "stamp"]
    assert reasons(log)["report"].startswith("run: input 'labels' changed ")


def test_a_failed_run_keeps_memos_of_what_succeeded_and_resumes(tmp_path):
    project = incremental_project(tmp_path / "p")
    ran, _ = run_may_fail(project, "--params", "fail=true", expect_ok=False)
    assert ran[:2] == ["double", "to_memory"] and "total" in ran
    ran, log = run(project)
    assert "double" not in ran and "total" in ran
    assert reasons(log)["double"].startswith("skip: fresh")


def test_a_corrupt_memo_means_run(project):
    memo = warehouse(project)
    dolt(memo, "checkout", MEMO_BRANCH)
    sql(project, f"UPDATE `{MEMO_TABLE}` SET outputs = '{{broken'; CALL DOLT_COMMIT('-am', 'x');")
    dolt(memo, "checkout", "main")
    ran, log = run(project)
    assert ran == ALL
    assert reasons(log)["double"] == "run: no memo"


def test_kedro_run_options_still_select_nodes(project):
    sql(project, "UPDATE raw SET x = 5 WHERE id = 2; CALL DOLT_COMMIT('-am', 'edit');")
    ran, _ = run(project, "--nodes", "double,total")
    assert ran == ["double", "total"]
    ran, _ = run(project, "--tags", "always_run")
    assert ran == ["stamp"]


def test_restore_can_be_turned_off(project):
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    run(project)
    sql(project, "UPDATE raw SET x = 1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'revert');")
    ran, log = run(project, "--runner-params", "restore=false")
    assert "double" in ran
    assert "restore is off" in reasons(log)["double"]


@pytest.mark.parametrize("mode", ["thread", "parallel"])
def test_thread_and_parallel_execution(tmp_path, mode):
    project = incremental_project(tmp_path / "p")
    ran, _ = run(project, "--runner-params", f"mode={mode}")
    assert sorted(ran) == sorted(ALL)
    ran, _ = run(project, "--runner-params", f"mode={mode}")
    assert sorted(ran) == sorted(ALWAYS)


def test_a_clone_elsewhere_reuses_the_memos(project, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    repo = warehouse(project)
    dolt(repo, "remote", "add", "origin", f"file://{remote}")
    dolt(repo, "push", "origin", "main")
    dolt(repo, "push", "origin", MEMO_BRANCH)
    other = tmp_path / "teammate"
    shutil.copytree(project, other, ignore=shutil.ignore_patterns("warehouse"))
    dolt(other / "data", "clone", f"file://{remote}", "warehouse")
    ran, log = run(other)
    assert ran == ALWAYS
    assert reasons(log)["double"].startswith("skip: fresh")


def test_on_the_server_engine(tmp_path, shared_server):
    project = incremental_project(tmp_path / "p")
    db = "inc" + tmp_path.name.replace("-", "_")[-20:].lower()
    local = warehouse(project)
    # The same source table in a database on a real dolt sql-server.
    shared_server.execute(
        f"CREATE DATABASE `{db}`",
        f"USE `{db}`",
        "CREATE TABLE raw (id BIGINT PRIMARY KEY, x DOUBLE)",
        "INSERT INTO raw VALUES (1, 1.0), (2, 2.0), (3, 3.0)",
        "CALL DOLT_COMMIT('-Am', 'raw data')",
    )
    shutil.rmtree(local)
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(
        catalog.read_text().replace(
            "database: data/warehouse", f"database: {db}\n  credentials: dolt_server"
        )
    )
    (project / "conf" / "local" / "credentials.yml").write_text(
        f"dolt_server:\n  con: {shared_server.url()}\n"
    )
    ran, _ = run(project)
    assert ran == ALL
    ran, log = run(project)
    assert ran == ALWAYS
    shared_server.execute(
        f"USE `{db}`", "UPDATE raw SET x = 9 WHERE id = 3", "CALL DOLT_COMMIT('-am', 'edit')"
    )
    ran, log = run(project)
    assert reasons(log)["double"].startswith("run: input 'raw' changed ")


def _rewrite_memo(project: Path, node: str, change) -> None:
    """Rewrite ``node``'s memo rows with ``change(entry) -> entry``, sealed with this user's
    key (what kedro-dolt itself would write), and commit them on the memo branch."""
    repo = warehouse(project)
    found = dolt_rows(repo, f"SELECT * FROM `{MEMO_TABLE}` AS OF '{MEMO_BRANCH}'")
    dolt(repo, "checkout", MEMO_BRANCH)
    for row in found:
        entry = MemoEntry.from_row(row)
        if entry is None or entry.node != node:
            continue
        assert entry.sealed
        new = change(entry).row()
        values = ", ".join(f"{k} = '{v}'" for k, v in new.items() if k not in ("node", "memo_key"))
        sql(project, f"UPDATE `{MEMO_TABLE}` SET {values} WHERE memo_key = '{row['memo_key']}';")
    sql(project, "CALL DOLT_COMMIT('-am', 'memo rewritten');")
    dolt(repo, "checkout", "main")


def test_a_restore_that_cannot_happen_runs_the_node(project):
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    run(project)
    sql(project, "UPDATE raw SET x = 1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'revert');")

    # A sealed memo of the first run that names a commit this repository does not have.
    def missing_commit(entry: MemoEntry) -> MemoEntry:
        doubled = dataclasses.replace(entry.outputs["doubled"], commit="v" * 32)
        return dataclasses.replace(entry, outputs={**entry.outputs, "doubled": doubled})

    _rewrite_memo(project, "double", missing_commit)
    ran, log = run(project)
    assert "double" in ran
    assert "running it instead" in log
    [manifest] = sorted((project / "data" / "kedro_dolt" / "runs").glob("*.json"))[-1:]
    nodes = {n["node"]: n for n in json.loads(manifest.read_text())["nodes"]}
    assert nodes["double"]["action"] == "run"
    assert nodes["double"]["reason"].startswith("restore from run ")


def test_a_memo_row_edited_by_hand_is_not_trusted(project):
    repo = warehouse(project)
    dolt(repo, "checkout", MEMO_BRANCH)
    # The row still derives its own key, but the edit breaks its seal and the commit it now
    # names does not hold the version it claims.
    sql(
        project,
        f"UPDATE `{MEMO_TABLE}` SET outputs = JSON_SET(CAST(outputs AS JSON), "
        "'$.doubled.commit', dolt_hashof('main')) WHERE node = 'double'; "
        "CALL DOLT_COMMIT('-am', 'x');",
    )
    dolt(repo, "checkout", "main")
    ran, log = run(project)
    assert "double" in ran
    assert reasons(log)["double"].startswith("run: its memo of run ")
    assert "not trusted" in reasons(log)["double"]


def test_load_versions_and_run_level_branches_are_honoured(project):
    repo = warehouse(project)
    first = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    # raw pinned to the commit the first run read (Kedro applies --load-versions to
    # `versioned: true` entries): what double last computed from.
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(
        catalog.read_text().replace("table: raw\n", "table: raw\n  versioned: true\n")
    )
    ran, log = run(project, "--load-versions", f"raw:{first}")
    assert "double" not in ran
    assert reasons(log)["double"].startswith("skip: fresh")
    # On a run-level branch the new raw is read, double reruns and saves there, not on main.
    before = table(project, "doubled")
    ran, log = run(project, "--params", "dolt_branch=exp")
    assert "double" in ran
    assert table(project, "doubled") == before
    ran, _ = run(project, "--params", "dolt_branch=exp")
    assert ran == ALWAYS  # fresh on that branch now
