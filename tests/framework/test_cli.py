"""``kedro dolt status|log|diff|changed`` on a project where a second run changes two of its
three Dolt datasets (companies, company_stats) and leaves one (countries) unchanged."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from kedro_dolt.versioning.commits import parse_trailers
from tests.conftest import ENGINES, ServerRepo, dolt, dolt_rows
from tests.support.kedro_project import company_project, kedro_cli

#: Every dataset of the server variant of the project is on the server.
SERVER = "  credentials: dolt_server\n"


def json_output(stdout: str):
    """The JSON document a command printed: all of stdout (logs go to stderr)."""
    return json.loads(stdout)


def table_lines(stdout: str) -> list[str]:
    """The rendered table: its header line, the rule under it, then the rows."""
    lines = stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if re.match(r"^-+(  -+)*$", line))
    rows = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        rows.append(line)
    return [lines[rule - 1], lines[rule], *rows]


class Project(type(Path())):  # type: ignore[misc]
    """The project's directory; ``repo`` is where its Dolt datasets live."""

    repo: Path


@pytest.fixture(scope="module", params=ENGINES)
def project(request, tmp_path_factory, dolt_home):
    """Two runs, on the local repository data/warehouse or (server) a database on the
    session's dolt sql-server; returns (project, first run id, second run id)."""
    where = tmp_path_factory.mktemp("cli") / "proj"
    if request.param == "server":
        server = request.getfixturevalue("shared_server")
        repo: Path = ServerRepo.on(server, f"w{uuid.uuid4().hex[:12]}")
        root = Project(company_project(where, extra=SERVER, database=repo.db))
        (root / "conf" / "local" / "credentials.yml").write_text(
            f"dolt_server:\n  con: {server.url()}\n"
        )
    else:
        root = Project(company_project(where))
        repo = root / "data" / "warehouse"
    root.repo = repo
    for n in (3, 5):
        result = kedro_cli(root, "run", "--params", f"n={n}")
        assert result.returncode == 0, result.stderr
    messages = dolt_rows(repo, "SELECT message FROM dolt_log")
    run_ids = sorted({parse_trailers(m["message"]).get("run_id") for m in messages} - {None})
    return root, run_ids[0], run_ids[1]


def run(project, *args: str):
    result = kedro_cli(project, "dolt", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class TestStatus:
    def test_table(self, project):
        root, *_ = project
        lines = table_lines(run(root, "status"))
        assert lines[0].split() == [
            "dataset",
            "database",
            "table",
            "branch",
            "head",
            "table_exists",
            "uncommitted",
        ]
        rows = [line.split() for line in lines[2:]]
        assert [r[0] for r in rows] == ["companies", "company_stats", "countries"]
        assert all(
            r[1] == root.repo.name and r[3] == "main" and r[5:] == ["True", "False"] for r in rows
        )

    def test_json_sees_uncommitted_changes(self, project):
        root, *_ = project
        database = root.repo
        dolt(database, "sql", "-q", "DELETE FROM countries WHERE code = 'US'")
        try:
            data = json_output(run(root, "status", "--json"))
        finally:
            dolt(database, "sql", "-q", "CALL dolt_checkout('countries')")
        by_name = {d["dataset"]: d for d in data}
        assert by_name["countries"]["uncommitted"] is True
        assert by_name["companies"]["uncommitted"] is False
        heads = dolt_rows(database, "SELECT hash FROM dolt_branches WHERE name = 'main'")
        assert {d["head"] for d in data} == {heads[0]["hash"]}


class TestLog:
    def test_dataset_log_has_lineage_columns(self, project):
        root, first, second = project
        data = json_output(run(root, "log", "companies", "--json"))
        assert [(d["dataset"], d["run_id"], d["node"]) for d in data] == [
            ("companies", second, "make_companies"),
            ("companies", first, "make_companies"),
        ]
        assert all(d["pipeline"] == "__default__" for d in data)
        assert all(d["project"] == "companies_demo" and d["kedro_version"] for d in data)

    def test_all_datasets_table(self, project):
        root, first, second = project
        out = run(root, "log", "-n", "10")
        lines = table_lines(out)
        assert lines[0].split()[:6] == ["commit", "date", "dataset", "run_id", "pipeline", "node"]
        body = "\n".join(lines[2:])
        # countries was saved once (its second save changed nothing): 5 commits in all.
        assert len(lines[2:]) == 5
        assert body.count("countries") >= 1 and f"{first}" in body and f"{second}" in body

    def test_up_to_a_run_id(self, project):
        """A Kedro run id is a ref here as everywhere (issue 19): the log up to that run."""
        root, first, _ = project
        data = json_output(run(root, "log", "companies", "--ref", first, "--json"))
        assert [d["run_id"] for d in data] == [first]

    def test_unknown_dataset(self, project):
        root, *_ = project
        result = kedro_cli(root, "dolt", "log", "nope")
        assert result.returncode != 0
        assert "'nope' is not a Dolt table dataset" in result.stdout + result.stderr


class TestDiff:
    def test_last_change_of_a_table(self, project):
        root, *_ = project
        out = run(root, "diff", "companies")
        assert re.search(r"companies \(companies\) \w{8}\.\.main: \+2 ~0 -0 rows", out)
        assert re.search(r"added\s+NL\s+3\s+company 3", out) or re.search(r"added.*company 3", out)

    def test_the_key_and_the_columns_that_changed(self, project):
        root, *_ = project
        lines = table_lines(run(root, "diff", "company_stats", "--from", "main~2"))
        assert lines[0].split() == ["change", "country", "companies"]
        assert {tuple(line.split()) for line in lines[2:]} == {
            ("modified", "NL", "2", "→", "3"),
            ("modified", "US", "1", "→", "2"),
        }

    def test_between_run_ids(self, project):
        root, first, second = project
        data = json_output(
            run(root, "diff", "company_stats", "--from", first, "--to", second, "--json")
        )
        assert (data["rows_added"], data["rows_modified"], data["rows_deleted"]) == (0, 2, 0)
        assert (data["from"], data["to"]) == (first, second)
        # --json keeps every column of every side.
        assert {"from_country", "to_country", "from_companies", "to_companies"} <= set(
            data["rows"][0]
        )

    def test_json_between_refs(self, project):
        root, *_ = project
        data = json_output(
            run(root, "diff", "company_stats", "--from", "main~2", "--to", "main", "--json")
        )
        assert (data["rows_added"], data["rows_modified"], data["rows_deleted"]) == (0, 2, 0)
        assert {r["diff_type"] for r in data["rows"]} == {"modified"}


class TestChanged:
    def test_since_first_run(self, project):
        root, first, _ = project
        out = run(root, "changed", "--since", first)
        assert "kedro run --from-inputs=companies,company_stats" in out
        data = json_output(run(root, "changed", "--since", first, "--json"))
        assert data["changed"] == ["companies", "company_stats"]
        assert {d["dataset"]: d["changed"] for d in data["datasets"]} == {
            "companies": True,
            "company_stats": True,
            "countries": False,
        }

    def test_since_second_run_nothing_changed(self, project):
        root, _, second = project
        data = json_output(run(root, "changed", "--since", second, "--json"))
        assert data["changed"] == [] and data["command"] is None

    def test_since_a_ref(self, project):
        root, *_ = project
        data = json_output(run(root, "changed", "--since", "main~1", "--json"))
        assert data["changed"] == ["company_stats"]  # main~1 is the second run's companies save
