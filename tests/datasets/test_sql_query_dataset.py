from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset, sql_policy
from kedro_dolt.engine import DoltCLIEngine
from kedro_dolt.engine.locking import LOCK_FILE
from tests.conftest import dolt, dolt_rows, state

#: Every test taking ``repo`` runs on the CLI and the server engine (see conftest).
BOTH_ENGINES = True


@pytest.fixture
def saved(repo, companies):
    dataset = DoltTableDataset(**repo.args, table="companies", save_args={"primary_key": "id"})
    dataset.save(companies)
    dolt(repo, "tag", "v1")
    dataset.save(companies.assign(employees=[1, 2, None]).astype({"employees": "Int64"}))
    return dataset


class TestDoltSQLQueryDataset:
    def test_load_returns_typed_frame(self, repo, saved):
        result = DoltSQLQueryDataset(
            **repo.args,
            sql="SELECT id, name, employees, employees / 2 AS half, created_at "
            "FROM companies, (SELECT CAST('2026-11-24 07:00:00' AS DATETIME) AS created_at) AS t "
            "ORDER BY id",
        ).load()
        assert result["id"].dtype == "int64"
        assert str(result["employees"].dtype) == "Int64"
        assert result["employees"].tolist()[:2] == [1, 2]
        assert result["employees"].isna().tolist() == [False, False, True]
        assert result["half"].dtype == "float64"  # DECIMAL -> float64, as pandas.read_sql
        assert result["name"].tolist() == ["Acme", "Globex", "Initech"]
        assert result["created_at"].dtype == "datetime64[ns]"

    def test_ref_reads_older_version(self, repo, saved, companies):
        old = DoltSQLQueryDataset(
            **repo.args, sql="SELECT SUM(employees) AS n FROM companies", ref="v1"
        )
        assert old.load()["n"].iloc[0] == companies["employees"].sum()
        previous = DoltSQLQueryDataset(
            **repo.args, sql="SELECT COUNT(*) AS n FROM companies", ref="HEAD~1"
        )
        assert previous.load()["n"].iloc[0] == 3

    def test_reads_committed_data_only(self, repo, saved):
        dolt(repo, "sql", "-q", "DELETE FROM companies")  # uncommitted
        count = DoltSQLQueryDataset(**repo.args, sql="SELECT COUNT(*) AS n FROM companies")
        assert count.load()["n"].iloc[0] == 3

    def test_writing_sql_is_refused_and_changes_nothing(self, repo, saved):
        before = state(repo)
        with pytest.raises(DatasetError, match="read-only"):
            DoltSQLQueryDataset(**repo.args, sql="DELETE FROM companies").load()
        assert state(repo) == before

    def test_save_raises(self, repo):
        with pytest.raises(DatasetError, match="read-only"):
            DoltSQLQueryDataset(**repo.args, sql="SELECT 1").save(pd.DataFrame())

    def test_bad_sql_reports_dolt_message(self, repo, saved):
        with pytest.raises(DatasetError, match=r"(?s)Query failed.*Dolt said:.*nope"):
            DoltSQLQueryDataset(**repo.args, sql="SELECT nope FROM companies").load()

    def test_unknown_ref(self, repo, saved):
        with pytest.raises(DatasetError, match=r"(?s)at 'gone'.*Dolt said"):
            DoltSQLQueryDataset(**repo.args, sql="SELECT 1", ref="gone").load()

    @pytest.mark.parametrize("sql", ["", "   "])
    def test_empty_sql(self, repo, sql):
        with pytest.raises(DatasetError, match="non-empty 'sql'"):
            DoltSQLQueryDataset(**repo.args, sql=sql)

    def test_describe(self, repo):
        dataset = DoltSQLQueryDataset(**repo.args, sql="SELECT 1", ref="v1")
        assert dataset._describe() == {
            "filepath": f"{repo.location} | query at v1",
            "database": repo.location,
            "sql": "SELECT 1",
            "ref": "v1",
        }


# -- the query policy against a real repository -----------------------------------------


@pytest.fixture(scope="module")
def warehouse(dolt_home, tmp_path_factory) -> Path:
    """A repository with history, a tag, a second branch and uncommitted work in two tables.

    Built with the plain dolt CLI. Shared by the tests below, which must all leave it as is.
    """
    repo = tmp_path_factory.mktemp("query-policy") / "warehouse"
    repo.mkdir()
    dolt(repo, "init")
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE companies (id INT PRIMARY KEY, name VARCHAR(50), employees INT);"
        "INSERT INTO companies VALUES (1, 'Acme', 10), (2, 'Globex', 200), (3, 'Initech', 35);"
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'hi');",
    )
    dolt(repo, "commit", "-Am", "first")
    dolt(repo, "tag", "v1")
    dolt(repo, "branch", "feature")
    dolt(repo, "sql", "-q", "UPDATE companies SET employees = 11 WHERE id = 1;")
    dolt(repo, "sql", "-q", "INSERT INTO companies VALUES (4, 'Umbrella', 50);")
    dolt(repo, "commit", "-Am", "second")
    # Uncommitted work the user has not saved anywhere else: one staged, one not.
    dolt(repo, "sql", "-q", "INSERT INTO notes VALUES (2, 'draft');")
    dolt(repo, "add", "notes")
    dolt(repo, "sql", "-q", "DELETE FROM companies WHERE id = 4;")
    return repo


def snapshot(repo: Path) -> dict[str, str]:
    """Everything a query must not change, read back through the plain dolt CLI."""
    tables = [
        r["t"]
        for r in dolt_rows(
            repo,
            "SELECT table_name AS t FROM information_schema.tables "
            "WHERE table_schema = database() ORDER BY 1",
        )
    ]
    state = (
        "SELECT active_branch() AS checked_out;"
        "SELECT name, hash, dirty FROM dolt_branches ORDER BY name;"
        "SELECT tag_name, tag_hash FROM dolt_tags ORDER BY tag_name;"
        "SELECT * FROM dolt_status ORDER BY table_name, staged;"
        "SELECT name, url FROM dolt_remotes ORDER BY name;"
        "SHOW DATABASES;"
    )
    contents = "".join(f"SELECT * FROM `{t}` ORDER BY 1;" for t in tables)
    return {
        "tables": ",".join(tables),
        "state": dolt(repo, "sql", "-r", "json", "-q", state),
        "contents": dolt(repo, "sql", "-r", "json", "-q", contents),
        "staged": dolt(repo, "diff", "--staged", "-r", "sql"),
        # kedro-dolt's own lock file appears with the first engine call: not the query's doing.
        "files": ",".join(sorted(p.name for p in repo.iterdir() if p.name != LOCK_FILE)),
    }


def test_snapshot_sees_uncommitted_work(warehouse):
    """The fixture really has the uncommitted work the tests promise to leave alone."""
    state = snapshot(warehouse)
    assert "companies" in state["state"] and "notes" in state["state"]  # dolt_status rows
    assert "draft" in state["contents"] and "Umbrella" not in state["contents"]
    assert "draft" in state["staged"]


# (sql, what the error must say, what the fix must say). Each is refused when the catalog is
# built, refused again by the engine, and leaves the repository exactly as it was.
BAD_QUERIES = [
    ("SELECT 1; USE warehouse; DROP TABLE companies", "has 3 statements", "first `;`"),
    ("USE warehouse", "USE statements", "dataset's `ref`"),
    ("USE `warehouse/main`; DELETE FROM companies", "has 2 statements", "first `;`"),
    ("SELECT ';'; CALL dolt_reset('--hard')", "has 2 statements", "first `;`"),
    ("SELECT 1 -- ;\n; CALL dolt_branch('evil')", "has 2 statements", "first `;`"),
    ("DROP TABLE companies", "DROP statements", "DoltTableDataset"),
    ("DELETE FROM companies", "DELETE statements", "DoltTableDataset"),
    ("UPDATE companies SET employees = 0", "UPDATE statements", "DoltTableDataset"),
    ("INSERT INTO companies VALUES (9, 'x', 1)", "INSERT statements", "DoltTableDataset"),
    ("REPLACE INTO companies VALUES (1, 'x', 1)", "REPLACE statements", "DoltTableDataset"),
    ("TRUNCATE TABLE notes", "TRUNCATE statements", "DoltTableDataset"),
    ("CREATE TABLE evil (a INT)", "CREATE statements", "DoltTableDataset"),
    ("CREATE DATABASE evil", "CREATE statements", "DoltTableDataset"),
    ("ALTER TABLE companies ADD COLUMN x INT", "ALTER statements", "DoltTableDataset"),
    ("WITH c AS (SELECT 1) DELETE FROM companies", "DELETE statements", "DoltTableDataset"),
    ("CALL dolt_commit('-Am', 'evil')", "CALL statements", "dolt CLI"),
    ("CALL dolt_branch('evil')", "CALL statements", "dolt CLI"),
    ("CALL dolt_reset('--hard')", "CALL statements", "dolt CLI"),
    ("SET @@autocommit = 0", "SET statements", "cannot set variables"),
    ("LOAD DATA INFILE 'x.csv' INTO TABLE notes", "LOAD statements", "DoltTableDataset"),
    ("PREPARE s FROM 'DROP TABLE companies'", "PREPARE statements", "DoltTableDataset"),
    ("SHOW TABLES", "SHOW statements", "information_schema"),
    ("SELECT dolt_commit('-Am', 'evil')", r"dolt_commit\(\) is not one", "dolt CLI"),
    ("SELECT dolt_branch('evil')", r"dolt_branch\(\) is not one", "dolt CLI"),
    ("SELECT dolt_reset('--hard')", r"dolt_reset\(\) is not one", "dolt CLI"),
    ("SELECT dolt_checkout('-b', 'evil')", r"dolt_checkout\(\) is not one", "dolt CLI"),
    ("SELECT dolt_merge('feature')", r"dolt_merge\(\) is not one", "dolt CLI"),
    ("SELECT dolt_tag('evil')", r"dolt_tag\(\) is not one", "dolt CLI"),
    ("SELECT dolt_push('origin', 'main')", r"dolt_push\(\) is not one", "dolt CLI"),
    ("SELECT dolt_remote('add', 'o', 'file:///x')", r"dolt_remote\(\) is not one", "dolt CLI"),
    ("SELECT dolt_add('.')", r"dolt_add\(\) is not one", "dolt CLI"),
    ("SELECT dolt_clean()", r"dolt_clean\(\) is not one", "dolt CLI"),
    ("SELECT dolt_gc()", r"dolt_gc\(\) is not one", "dolt CLI"),
    ("SELECT * FROM companies WHERE id IN (SELECT dcommit('-m', 'x'))", "dcommit", "dolt CLI"),
    ("(SELECT 1) UNION (SELECT `dolt_branch`('evil'))", r"dolt_branch\(\)", "dolt CLI"),
    ("SELECT * FROM companies INTO OUTFILE 'out.csv'", "INTO writes", "remove the INTO"),
    ("SELECT * FROM companies INTO DUMPFILE 'out.bin'", "INTO writes", "remove the INTO"),
    ("SELECT id FROM companies LIMIT 1 INTO @evil", "INTO writes", "remove the INTO"),
    ("SELECT * FROM companies FOR UPDATE", "row locks", "remove the locking clause"),
    ("SELECT * FROM companies LOCK IN SHARE MODE", "row locks", "remove the locking clause"),
    ("SELECT 1 /*!, (SELECT dolt_branch('evil')) */", "executable comment", "remove the comment"),
    ("SELECT 1 /*!50000 ; DROP TABLE companies */", "executable comment", "remove the comment"),
    ("SELECT /*+ x /*! ; DROP TABLE companies */ 1", "executable comment", "remove the comment"),
    ("SELECT 2 --1 AS n FROM companies", "`--` directly followed", "with a space"),
    ("SELECT @n := COUNT(*) FROM companies", "assigns a user variable", "remove the assignment"),
    ("SELECT LOAD_FILE('/etc/passwd')", "reads files", "remove LOAD_FILE()"),
    ("SELECT SLEEP(5)", "blocks every save", "remove SLEEP()"),
    ("SELECT GET_LOCK('evil', 1)", "named lock", "remove GET_LOCK()"),
    ("SELECT * FROM companies\\G", "could not be parsed", "check the syntax"),
]


class TestQueryPolicy:
    @pytest.mark.parametrize(("sql", "what", "fix"), BAD_QUERIES)
    def test_refused_and_repository_unchanged(self, warehouse, sql, what, fix):
        before = snapshot(warehouse)
        with pytest.raises(DatasetError, match=r"(?s)Query refused.*" + what) as raised:
            DoltSQLQueryDataset(database=str(warehouse), sql=sql).load()
        assert fix in str(raised.value).split("Fix: ", 1)[1]
        # The engine is the boundary: called directly, it refuses the same query itself.
        with pytest.raises(DatasetError, match=r"(?s)Query refused.*" + what):
            DoltCLIEngine(warehouse).query(sql)
        assert snapshot(warehouse) == before

    def test_use_escape_is_closed(self, warehouse):
        """Issue 8 item 1: a second USE left the revision database and dropped the table."""
        before = snapshot(warehouse)
        with pytest.raises(DatasetError, match="Query refused"):
            DoltSQLQueryDataset(
                database=str(warehouse), sql="SELECT 1; USE warehouse; DROP TABLE companies"
            ).load()
        assert snapshot(warehouse) == before

    def test_dash_dash_cannot_smuggle_a_statement(self, warehouse):
        # Dolt reads `--1` as a comment, so it would run the DROP on the next line; MySQL and
        # sqlglot >= 30 read minus minus one and a string. Refused whichever way sqlglot reads.
        before = snapshot(warehouse)
        with pytest.raises(DatasetError, match=r"(?s)Query refused.*Fix: "):
            DoltSQLQueryDataset(
                database=str(warehouse), sql="SELECT 1 --1, 'x\n; DROP TABLE companies; -- '"
            ).load()
        assert snapshot(warehouse) == before

    def test_refused_when_the_catalog_is_built_without_touching_dolt(self, tmp_path):
        nowhere = tmp_path / "not-yet"
        with pytest.raises(DatasetError, match="USE statements"):
            DoltSQLQueryDataset(database=str(nowhere), sql="USE warehouse")
        assert not nowhere.exists()


# Statements that reach Dolt as they are when the policy is switched off, as if it had been
# fooled: the revision database, the read-only chunk store and the scratch directory must
# still stop every one of them.
BYPASSES = [
    "SELECT 1; USE warehouse; DROP TABLE companies",
    "USE warehouse; DELETE FROM notes",
    "USE warehouse; CALL dolt_reset('--hard')",
    "USE warehouse; CALL dolt_branch('evil')",
    "USE warehouse; CALL dolt_tag('evil')",
    "USE warehouse; CALL dolt_checkout('-b', 'evil')",
    "USE warehouse; CALL dolt_commit('-Am', 'evil')",
    "USE `warehouse/feature`; INSERT INTO companies VALUES (9, 'evil', 1)",
    "USE `warehouse/feature`; CALL dolt_merge('main')",
    "CALL dolt_gc()",
    "DROP TABLE companies",
]


class TestDefenceInDepth:
    @pytest.fixture(autouse=True)
    def fooled_policy(self, monkeypatch):
        monkeypatch.setattr(sql_policy, "read_only_statement", lambda sql: sql)

    @pytest.mark.parametrize("sql", BYPASSES)
    def test_nothing_changes_even_unchecked(self, warehouse, sql):
        before = snapshot(warehouse)
        with pytest.raises(DatasetError, match="Query failed"):
            DoltCLIEngine(warehouse).query(sql)
        assert snapshot(warehouse) == before

    def test_files_stay_in_a_scratch_directory(self, warehouse, tmp_path):
        before = snapshot(warehouse)
        with pytest.raises(DatasetError, match=r"(?s)Query failed.*secure-file-priv"):
            DoltCLIEngine(warehouse).query(f"SELECT 1 INTO OUTFILE '{tmp_path / 'leak.csv'}'")
        with pytest.raises(DatasetError, match="no result set"):  # written, then thrown away
            DoltCLIEngine(warehouse).query("SELECT * FROM companies INTO OUTFILE 'leak.csv'")
        assert not (tmp_path / "leak.csv").exists()
        assert snapshot(warehouse) == before


# Dolt's own syntax keeps working: (sql, the value of column n in the first row).
DOLT_QUERIES = [
    ("SELECT COUNT(*) AS n FROM companies", 4),  # HEAD's commit, not the working set
    ("SELECT COUNT(*) AS n FROM companies AS OF 'v1'", 3),
    ("SELECT COUNT(*) AS n FROM companies AS OF 'HEAD~1' AS c WHERE c.id > 1", 2),
    ("SELECT COUNT(*) AS n FROM companies AS OF TIMESTAMP(NOW())", 4),
    ("SELECT COUNT(*) AS n FROM `warehouse/v1`.companies", 3),
    ("SELECT COUNT(*) AS n FROM `warehouse/feature`.companies", 3),
    ("SELECT COUNT(*) AS n FROM `warehouse/main`.companies", 3),  # main's working set
    ("SELECT COUNT(*) AS n FROM dolt_diff('v1', 'main', 'companies')", 2),
    ("SELECT rows_added AS n FROM dolt_diff_stat('v1', 'main', 'companies')", 1),
    ("SELECT COUNT(*) AS n FROM dolt_diff_summary('v1', 'main')", 1),
    ("SELECT COUNT(*) AS n FROM dolt_schema_diff('v1', 'main', 'companies')", 0),
    ("SELECT COUNT(*) AS n FROM dolt_patch('v1', 'main', 'companies')", 2),
    ("SELECT COUNT(*) AS n FROM dolt_log('feature')", 2),
    ("SELECT COUNT(*) AS n FROM dolt_log", 3),
    ("SELECT COUNT(*) AS n FROM dolt_history_companies WHERE id = 1", 2),
    ("SELECT COUNT(*) AS n FROM dolt_diff_companies WHERE to_id = 4", 1),
    # IF(...): `dolt sql -r parquet` (1.86.4) writes every boolean expression as 0.
    ("SELECT IF(dolt_hashof('v1') = (SELECT tag_hash FROM dolt_tags), 1, 0) AS n", 1),
    ("SELECT LENGTH(dolt_hashof_table('companies')) AS n", 32),
    ("SELECT IF(LENGTH(dolt_hashof_db()) > 0 AND dolt_version() LIKE '1.%', 1, 0) AS n", 1),
    ("SELECT IF(active_branch() IS NULL, 1, 0) AS n", 1),  # a commit, not a branch
    ("WITH big AS (SELECT * FROM companies WHERE employees > 20) SELECT COUNT(*) AS n FROM big", 3),
    ("SELECT id AS n FROM companies WHERE id = 2 UNION SELECT 7 ORDER BY n", 2),
    ("-- why\nSELECT /* inline */ COUNT(*) AS n # end\nFROM companies;", 4),
    ("SELECT /*+ JOIN_ORDER(companies) */ COUNT(*) AS n FROM companies", 4),
    ("SELECT LENGTH('/*! x */; DROP TABLE companies; --') AS n", 34),
]


class TestDoltSyntax:
    @pytest.mark.parametrize(("sql", "n"), DOLT_QUERIES)
    def test_dolt_queries_work(self, warehouse, sql, n):
        before = snapshot(warehouse)
        frame = DoltSQLQueryDataset(database=str(warehouse), sql=sql).load()
        assert frame["n"].iloc[0] == n
        assert snapshot(warehouse) == before
