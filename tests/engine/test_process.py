from __future__ import annotations

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt.engine import DoltCLIEngine
from kedro_dolt.engine.schema import TableSchema
from tests.conftest import dolt, dolt_rows


@pytest.fixture
def engine(repo):
    return DoltCLIEngine(repo)


def write(engine, frame, branch=None, message="m"):
    schema = TableSchema.from_frame(frame, ["id"])
    return engine.write_table("t", frame, schema=schema, branch=branch, message=message)


class TestRepository:
    def test_init_on_first_write_and_state(self, engine, repo, companies):
        assert not engine.exists()
        result = write(engine, companies)
        assert engine.exists()
        state = engine.state()
        assert state.checked_out == "main"
        assert state.heads == {"main": result.to_commit}
        assert result.committed and result.branch == "main"
        assert dolt_rows(repo, "SELECT dolt_hashof('HEAD~1') AS h")[0]["h"] == result.from_commit

    def test_unchanged_write_reports_no_commit(self, engine, companies):
        first = write(engine, companies)
        second = write(engine, companies)
        assert not second.committed
        assert second.from_commit == second.to_commit == first.to_commit

    def test_state_sees_uncommitted_changes(self, engine, repo, companies):
        write(engine, companies)
        dolt(repo, "sql", "-q", "DELETE FROM t WHERE id = 1")
        state = engine.state()
        assert state.dirty_branches == {"main"}
        assert state.working_changes == (("t", False, "modified"),)

    def test_resolve_branches_tags_and_ancestors(self, engine, repo, companies):
        first = write(engine, companies).to_commit
        engine.tag("v1", "main", "first version")
        second = write(engine, companies.head(1)).to_commit
        engine.create_branch("dev", "v1")
        assert engine.resolve("v1") == first
        assert engine.resolve("HEAD~1") == first
        assert engine.resolve("dev") == first
        assert engine.resolve("main") == second
        assert engine.branch_exists("dev") and not engine.branch_exists("nope")

    def test_log_newest_first(self, engine, companies):
        write(engine, companies, message="first")
        write(engine, companies.head(1), message="second")
        log = engine.log()
        assert [e.message for e in log[:2]] == ["second", "first"]
        assert log[0].author == "Kedro Dolt Tests"
        assert len(engine.log(limit=1)) == 1

    def test_version_is_the_installed_binary(self, engine, repo):
        assert engine.version() in dolt(repo.parent, "version")


class TestTables:
    def test_read_at_commit_with_limit(self, engine, companies):
        first = write(engine, companies).to_commit
        write(engine, companies.assign(employees=0))
        read = engine.read_table("t", ref=first, limit=2)
        assert read.commit == first
        pd.testing.assert_frame_equal(read.frame, companies.head(2))

    def test_write_to_branch_never_checks_out(self, engine, repo, companies):
        write(engine, companies)
        engine.create_branch("dev", "main")
        result = write(engine, companies.head(1), branch="dev")
        assert result.branch == "dev"
        assert engine.active_branch() == "main"
        assert len(engine.read_table("t", ref="main").frame) == 3

    def test_has_table(self, engine, companies):
        assert not engine.has_table("t", ref="HEAD")
        write(engine, companies)
        assert engine.has_table("t", ref="main")
        assert not engine.has_table("t", ref="HEAD~1")
        assert not engine.has_table("t", ref="no-branch")

    def test_query_runs_read_only(self, engine, companies):
        write(engine, companies)
        result = engine.query("SELECT COUNT(*) AS n FROM t")
        assert result.frame["n"].tolist() == [3]
        assert result.commit == engine.resolve("main")
        with pytest.raises(DatasetError, match="read-only"):
            engine.query("DROP TABLE t")
        assert engine.has_table("t", ref="HEAD")
