"""Real ``kedro run --runner kedro_dolt.IncrementalRunner`` processes on a project with a
model, a plot, an in-memory split and every kind of node: each change that alters a node's
result makes exactly that node (and what depends on it) run; nothing changed skips every
node, in-memory chains included (README, "Incremental runs")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kedro_dolt.framework.incremental.memo import MEMO_BRANCH, MEMO_TABLE
from tests.conftest import dolt, dolt_rows
from tests.support.incremental_project import run
from tests.support.kedro_project import kedro_cli
from tests.support.model_project import ALL, edit, model_project

NODES = "src/inc_model/nodes.py"
REGISTRY = "src/inc_model/pipeline_registry.py"
CATALOG = "conf/base/catalog.yml"


@pytest.fixture(scope="module")
def after_first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = model_project(tmp_path_factory.mktemp("template") / "p")
    ran, _ = run(project)
    assert sorted(ran) == sorted(ALL)
    return project


@pytest.fixture
def project(after_first_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(after_first_run, tmp_path / "p", symlinks=True))


def warehouse(project: Path) -> Path:
    return project / "data" / "warehouse"


def sql(project: Path, query: str) -> None:
    dolt(warehouse(project), "sql", "-q", query)


def rows(project: Path, table: str) -> list[dict]:
    return dolt_rows(warehouse(project), f"SELECT * FROM `{table}` ORDER BY 1")


def plan(project: Path, *args: str) -> dict[str, dict]:
    result = kedro_cli(project, "dolt", "plan", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return {n["node"]: n for n in json.loads(result.stdout)["nodes"]}


def test_nothing_changed_skips_every_node_models_plots_and_memory_chains_included(project):
    planned = plan(project)
    assert {n: p["action"] for n, p in planned.items()} == {n: "skip" for n in ALL}
    assert "in-memory outputs" in planned["split"]["reason"]
    ran, _ = run(project)
    assert ran == []


def test_a_changed_params_runs_the_model_nodes_only(project):
    edit(project, "conf/base/parameters.yml", "k: 2", "k: 3")
    planned = {n for n, p in plan(project).items() if p["action"] == "run"}
    ran, _ = run(project)
    # split's in-memory output is made again because train, which runs, needs it.
    assert ran == ["split", "train", "evaluate", "plot"]
    assert planned == set(ran)  # the plan foresaw it, the deferred producer included


@pytest.mark.parametrize(
    ("path", "old", "new", "node"),
    [
        # a factory's closure value
        (REGISTRY, "make_filter(1)", "make_filter(2)", "keep"),
        # the state of the object a bound method belongs to
        (REGISTRY, "Shift(1)", "Shift(2)", "shift"),
        # a module-level constant
        (NODES, "THRESHOLD = 1", "THRESHOLD = 2", "above"),
        # a helper called as pkg.sub.module.function(...) (and a constant it reads)
        ("src/inc_model/lib/deep/mathx.py", "OFFSET = 1", "OFFSET = 5", "prep"),
        # a helper imported inside the node function
        ("src/inc_model/lib/deep/mathx.py", "values * 2", "values * 4", "local_import"),
        # a function called by a decorated helper
        ("src/inc_model/decor.py", "values * 3", "values * 7", "decorated"),
        # a node wrapped by a decorator without functools.wraps
        (NODES, 'x=raw["x"] - 1', 'x=raw["x"] - 9', "wrapped"),
        # a method of a project object the node loads (pickled)
        ("src/inc_model/models.py", 'frame["x"] * self.k', 'frame["x"] * self.k + 1', "evaluate"),
        # two dataset inputs, two params inputs, two outputs swapped in the declaration
        (REGISTRY, '["kept", "shifted"]', '["shifted", "kept"]', "combine"),
        (REGISTRY, '["params:a", "params:b"]', '["params:b", "params:a"]', "sub"),
        (REGISTRY, '["tens", "hundreds"]', '["hundreds", "tens"]', "pair"),
        # catalog options: a Dolt input's columns, a CSV input's load_args, a CSV output's
        # save_args, a Dolt output's key
        (CATALOG, "columns: [id, x]}", "columns: [id, x, note]}", "width"),
        (CATALOG, 'load_args: {sep: ","}', 'load_args: {sep: ";"}', "labels_info"),
        (CATALOG, "save_args: {index: false}", "save_args: {index: true}", "to_csv"),
        (
            CATALOG,
            "table: keyed\n  load_args: {columns: [id]}\n  save_args: {primary_key: id}",
            "table: keyed\n  load_args: {columns: [id]}\n  save_args: {primary_key: [id, x]}",
            "keyed",
        ),
    ],
)
def test_a_change_that_alters_a_result_runs_its_node(project, path, old, new, node):
    edit(project, path, old, new)
    ran, _ = run(project)
    assert node in ran
    # ... and only where it matters: an unrelated node stays skipped.
    assert "ints" not in ran
    again, _ = run(project)
    assert node not in again  # its new result is fresh now


def test_integer_param_keys_are_an_input(project):
    edit(project, "conf/base/parameters.yml", "1: one", "1: uno")
    ran, _ = run(project)
    assert ran == ["ints"]
    assert "uno" in rows(project, "ints_out")[0]["v"]


def test_a_restore_writes_the_whole_table_version_whatever_load_args_read(project):
    before = rows(project, "keyed")
    assert set(before[0]) == {"id", "x", "note", "y"}
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    ran, _ = run(project)
    assert "keyed" in ran
    sql(project, "UPDATE raw SET x = 1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'revert');")
    ran, log = run(project)
    assert "keyed" not in ran and "restore keyed from run" in log
    assert rows(project, "keyed") == before  # every column, not just load_args' [id]


def test_file_outputs_are_restored_from_versions_and_kept_copies(project):
    csv = (project / "data" / "raw.csv").read_text()
    chart_versions = sorted((project / "data" / "chart.json").iterdir())
    chart = (chart_versions[-1] / "chart.json").read_text()
    sql(project, "UPDATE raw SET x = 10 WHERE id = 2; CALL DOLT_COMMIT('-am', 'edit');")
    run(project)
    assert (project / "data" / "raw.csv").read_text() != csv
    sql(project, "UPDATE raw SET x = 2 WHERE id = 2; CALL DOLT_COMMIT('-am', 'revert');")
    ran, log = run(project)
    # The model nodes and the plot are restored from their saved versions, the CSV from the
    # kept copy: none of them runs.
    assert not {"to_csv", "train", "evaluate", "plot"} & set(ran), ran
    assert "restore to_csv from run" in log and "restore plot from run" in log
    assert (project / "data" / "raw.csv").read_text() == csv
    latest = sorted((project / "data" / "chart.json").iterdir())[-1]
    assert (latest / "chart.json").read_text() == chart
    ran, _ = run(project)
    assert ran == []


def test_a_hand_edited_memo_row_is_not_trusted(project):
    sql(project, "UPDATE keyed SET y = -1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'by hand');")
    repo = warehouse(project)
    head = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
    new = dolt_rows(repo, "SELECT dolt_hashof_table('keyed') AS h")[0]["h"]
    [row] = dolt_rows(
        repo, f"SELECT outputs FROM `{MEMO_TABLE}` AS OF '{MEMO_BRANCH}' WHERE node = 'keyed'"
    )
    outputs = json.loads(row["outputs"])
    version = outputs["keyed"]["version"]
    # The row now claims the hand-edited table as the node's own result.
    outputs["keyed"]["version"] = "dolt:" + new + version[version.index("#") :]
    outputs["keyed"]["commit"] = head
    dolt(repo, "checkout", MEMO_BRANCH)
    claimed = json.dumps(outputs).replace("'", "''")
    sql(
        project,
        f"UPDATE `{MEMO_TABLE}` SET outputs = '{claimed}' WHERE node = 'keyed'; "
        "CALL DOLT_COMMIT('-am', 'forged');",
    )
    dolt(repo, "checkout", "main")
    ran, log = run(project)
    assert "keyed" in ran
    assert "not trusted" in log
    assert rows(project, "keyed")[0]["y"] == 2.0  # the node's result is back


def test_an_input_that_pulls_from_a_remote_is_versioned_after_the_pull(project, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    repo = warehouse(project)
    dolt(repo, "remote", "add", "origin", f"file://{remote}")
    dolt(repo, "push", "origin", "main")
    edit(
        project,
        CATALOG,
        "narrow:\n  type: kedro_dolt.DoltTableDataset\n",
        "narrow:\n  type: kedro_dolt.DoltTableDataset\n"
        f"  remote: {{name: origin, url: 'file://{remote}', pull: true}}\n",
    )
    ran, _ = run(project)
    assert ran == ["width"]  # the catalog entry changed: another input
    teammate = tmp_path / "teammate"
    dolt(tmp_path, "clone", f"file://{remote}", "teammate")
    dolt(
        teammate,
        "sql",
        "-q",
        "INSERT INTO raw VALUES (5, 5.0, 'e'); CALL DOLT_COMMIT('-am', 'a row');",
    )
    dolt(teammate, "push", "origin", "main")
    ran, _ = run(project)
    assert "width" in ran
    assert rows(project, "widths")[0]["rows"] == 5  # the pulled row is there
    # Every node reading raw saw the pulled version too (pulls happen before any decision).
    assert "keep" in ran and "prep" in ran


def test_an_output_saved_otherwise_now_is_not_restored_but_run(project):
    sql(project, "UPDATE raw SET x = 10 WHERE id = 2; CALL DOLT_COMMIT('-am', 'edit');")
    run(project)
    sql(project, "UPDATE raw SET x = 2 WHERE id = 2; CALL DOLT_COMMIT('-am', 'revert');")
    edit(project, CATALOG, "save_args: {index: false}", "save_args: {index: true}")
    ran, log = run(project)
    assert "to_csv" in ran
    assert "catalog entry changed since" in log and "restoring node to_csv failed" not in log
    assert (project / "data" / "raw.csv").read_text().startswith(",id,")  # saved as now
