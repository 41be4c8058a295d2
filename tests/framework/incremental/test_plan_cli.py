"""``kedro dolt plan`` takes ``kedro run``'s options and plans what the run then does: real
``kedro`` processes on real Dolt, the plan compared with the run's manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import dolt, dolt_rows
from tests.support.incremental_project import incremental_project, run
from tests.support.kedro_project import kedro_cli

ALL = ["double", "to_memory", "from_memory", "total", "report", "stamp"]


@pytest.fixture(scope="module")
def after_first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = incremental_project(tmp_path_factory.mktemp("template") / "p")
    ran, _ = run(project)
    assert ran == ALL
    return project


@pytest.fixture
def project(after_first_run: Path, tmp_path: Path) -> Path:
    """The project after its first run (memos kept), copied for this test."""
    return Path(shutil.copytree(after_first_run, tmp_path / "p", symlinks=True))


def warehouse(project: Path) -> Path:
    return project / "data" / "warehouse"


def sql(project: Path, query: str, *, branch: str = "main") -> None:
    """``query`` committed on ``branch`` only (the checked-out branch stays main)."""
    repo = warehouse(project)
    if branch != "main":
        dolt(repo, "checkout", branch)
    try:
        dolt(repo, "sql", "-q", query)
    finally:
        if branch != "main":
            dolt(repo, "checkout", "main")


def branches(project: Path) -> set[str]:
    return {r["name"] for r in dolt_rows(warehouse(project), "SELECT name FROM dolt_branches")}


def plan(project: Path, *args: str) -> dict[str, dict]:
    result = kedro_cli(project, "dolt", "plan", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return {n["node"]: n for n in json.loads(result.stdout)["nodes"]}


def run_nodes(project: Path, *args: str) -> tuple[list[str], dict[str, dict]]:
    """The incremental run: the nodes that executed and its manifest's nodes."""
    ran, _ = run(project, *args)
    runs = project / "data" / "kedro_dolt" / "runs"
    manifest = max(runs.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return ran, {n["node"]: n for n in json.loads(manifest.read_text())["nodes"]}


def actions(nodes: dict[str, dict]) -> dict[str, str]:
    return {name: node["action"] for name, node in nodes.items()}


def assert_plan_is_the_run(project: Path, *args: str) -> dict[str, dict]:
    """``kedro dolt plan ARGS`` then ``kedro run ARGS``: same nodes, same actions, and the
    nodes that executed are those planned to run; the plan."""
    planned = plan(project, *args)
    ran, done = run_nodes(project, *args)
    assert actions(planned) == actions(done)
    assert sorted(ran) == sorted(n for n, a in actions(planned).items() if a == "run")
    return planned


def test_run_level_branch_plans_the_versions_the_run_reads(project):
    # exp does not exist yet: the plan reads what the run reads (main) and creates nothing.
    planned = assert_plan_is_the_run(project, "--params", "dolt_branch=exp")
    assert planned["double"]["action"] == "skip"
    assert "exp" in branches(project)  # made by the run (stamp always saves)
    # raw changes on exp only: the run on exp reruns double, one on main would skip it.
    sql(
        project,
        "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'exp edit');",
        branch="exp",
    )
    assert plan(project)["double"]["action"] == "skip"
    planned = assert_plan_is_the_run(project, "--params", "dolt_branch=exp")
    assert planned["double"]["action"] == "run"
    assert actions(planned) == dict.fromkeys(ALL, "run")
    # ... and main is untouched: still fresh there.
    assert plan(project)["double"]["action"] == "skip"
    # A plan on a branch that does not exist creates none.
    plan(project, "--params", "dolt_branch=never-made")
    assert "never-made" not in branches(project)


def test_an_invalid_run_level_branch_fails_the_plan_as_the_run(project):
    result = kedro_cli(project, "dolt", "plan", "--params", "dolt_branch=a..b")
    assert result.returncode != 0
    assert "Invalid dolt_branch" in result.stdout + result.stderr


def test_load_versions(project):
    first = dolt_rows(warehouse(project), "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    catalog = project / "conf" / "base" / "catalog.yml"
    catalog.write_text(
        catalog.read_text().replace("table: raw\n", "table: raw\n  versioned: true\n")
    )
    assert plan(project)["double"]["action"] == "run"
    # raw pinned to the commit the first run read: double is fresh again.
    planned = assert_plan_is_the_run(project, "--load-versions", f"raw:{first}")
    assert planned["double"]["action"] == "skip"
    assert planned["stamp"]["action"] == "run"


def test_from_inputs(project):
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    planned = assert_plan_is_the_run(project, "--from-inputs", "doubled")
    assert set(planned) == {"total", "report", "stamp"}
    assert actions(planned) == {"total": "skip", "report": "skip", "stamp": "run"}


def test_to_outputs(project):
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    planned = assert_plan_is_the_run(project, "--to-outputs", "totals")
    assert actions(planned) == {"double": "run", "total": "run"}


def test_runner_params_restore_false(project):
    sql(project, "UPDATE raw SET x = 10 WHERE id = 1; CALL DOLT_COMMIT('-am', 'edit');")
    run(project)
    sql(project, "UPDATE raw SET x = 1 WHERE id = 1; CALL DOLT_COMMIT('-am', 'revert');")
    assert plan(project)["double"]["action"] == "restore"
    assert plan(project, "--runner-params", "mode=sequential,restore=false") == plan(
        project, "--no-restore"
    )
    planned = assert_plan_is_the_run(project, "--runner-params", "restore=false")
    assert planned["double"]["action"] == "run"
    assert "restore is off" in planned["double"]["reason"]
