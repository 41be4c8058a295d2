"""The query policy on its own: which statements pass, what runs, and the read-only lock.

The catalogue of refused queries, run against a real repository, is in
tests/datasets/test_sql_query_dataset.py; here each rule is pinned down in isolation.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from kedro_dolt.engine.sql_policy import (
    READ_ONLY_DOLT_FUNCTIONS,
    read_only_statement,
    storage_read_only,
    tables_read,
)
from tests.conftest import dolt, dolt_rows


class TestAccepted:
    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT 1",
            "select * from companies where name = 'a;b'",
            "SELECT * FROM companies AS OF 'main'",
            "SELECT * FROM companies AS OF 'v1' AS c JOIN people AS OF 'HEAD~1' p ON c.id = p.id",
            "SELECT * FROM companies AS OF TIMESTAMP('2026-01-01')",
            "SELECT * FROM `warehouse/main`.companies",
            "SELECT * FROM dolt_diff('v1', 'main', 'companies')",
            "SELECT * FROM dolt_diff_stat('v1', 'main')",
            "SELECT * FROM dolt_log('main') JOIN dolt_history_companies h USING (commit_hash)",
            "SELECT dolt_hashof('v1'), dolt_hashof_table('t'), dolt_hashof_db(), active_branch()",
            "SELECT dolt_merge_base('main', 'feature'), DOLT_VERSION()",
            "SELECT * FROM dolt_preview_merge_conflicts_summary('main', 'feature')",
            "WITH big AS (SELECT * FROM companies WHERE employees > 20) SELECT * FROM big",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) "
            "SELECT * FROM n",
            "(SELECT 1) UNION ALL (SELECT 2) ORDER BY 1",
            "SELECT 1 INTERSECT SELECT 1 EXCEPT SELECT 2",
            "SELECT id FROM companies WHERE id IN (SELECT id FROM companies AS OF 'v1')",
            "SELECT REPLACE(name, 'a', 'b'), INSERT(name, 1, 1, 'X'), IF(id > 1, 1, 0) FROM t",
            "SELECT CAST(x AS CHAR CHARACTER SET utf8mb4), j->>'$.a', @@version FROM t",
            "SELECT 1;",
            "SELECT 1 ;; ",
        ],
    )
    def test_one_select_passes(self, sql):
        read_only_statement(sql)

    def test_every_listed_dolt_function_passes(self):
        for name in READ_ONLY_DOLT_FUNCTIONS:
            read_only_statement(f"SELECT * FROM {name}('a', 'b')")

    @pytest.mark.parametrize(
        ("sql", "runs"),
        [
            ("SELECT 1;", "SELECT 1"),
            ("-- why\nSELECT /* inline */ 1 # end\n, 2;\n", "SELECT 1 , 2"),
            ("SELECT /*+ JOIN_ORDER(a, b) */ 1", "SELECT 1"),
            ("SELECT _utf8mb4'x', x'AB', a.b, .5, 1e3", "SELECT _utf8mb4'x', x'AB', a.b, .5, 1e3"),
            ("SELECT 'it''s; -- /*! */', `a``b`", "SELECT 'it''s; -- /*! */', `a``b`"),
            ("SELECT 1 - -1", "SELECT 1 - -1"),
            ("-- see /*! here */\nSELECT 1 /* a--b */ --\n", "SELECT 1"),
        ],
    )
    def test_runs_the_checked_tokens_without_comments(self, sql, runs):
        # Dolt is given only the tokens that were checked: no comment reaches it at all.
        assert read_only_statement(sql) == runs


class TestRefused:
    @pytest.mark.parametrize(
        ("sql", "what", "fix"),
        [
            ("SELECT 1; SELECT 2", "has 2 statements", "remove everything after the first"),
            ("SELECT ';' ; DROP TABLE t", "has 2 statements", "DoltTableDataset"),
            ("SELECT 1 -- ;\n; DROP TABLE t", "has 2 statements", "first `;`"),
            ("SELECT '/*'; DROP TABLE t; -- */", "has 2 statements", "first `;`"),
            ("USE `db/main`", "USE statements", "dataset's `ref`"),
            ("CALL dolt_commit('-m', 'x')", "CALL statements", "DoltTableDataset"),
            ("SET @@autocommit = 0", "SET statements", "cannot set variables"),
            ("SHOW TABLES", "SHOW statements", "information_schema"),
            ("WITH a AS (SELECT 1) DELETE FROM t", "DELETE statements", "DoltTableDataset"),
            ("VALUES ROW(1)", "VALUES statements", "Write one SELECT"),
            ("SELECT * FROM t INTO OUTFILE 'x'", "INTO writes", "remove the INTO clause"),
            ("SELECT * FROM t FOR UPDATE", "row locks", "remove the locking clause"),
            ("SELECT @a := 1", "assigns a user variable", "remove the assignment"),
            ("SELECT 1 /*! , 2 */", "executable comment", "remove the comment"),
            ("SELECT 1 /*!50000 , 2 */", "executable comment", "remove the comment"),
            ("SELECT 1 --1", "`--` directly followed", "with a space"),
            ("SELECT dolt_commit('-m', 'x')", r"dolt_commit\(\) is not one of", "dolt CLI"),
            ("SELECT `dolt_branch`('x')", r"dolt_branch\(\) is not one", "dolt CLI"),
            ("SELECT dolt_branch ('x')", r"dolt_branch\(\) is not one", "dolt CLI"),
            ("SELECT dolt_nobody_knows()", r"dolt_nobody_knows\(\) is not one", "dolt CLI"),
            ("SELECT DCOMMIT('-m', 'x')", r"dcommit\(\) is not one", "dolt CLI"),
            ("SELECT LOAD_FILE('/etc/passwd')", r"LOAD_FILE\(\) reads files", "remove LOAD_FILE"),
            ("SELECT SLEEP(1)", "blocks every save", "remove SLEEP()"),
            ("SELECT GET_LOCK('x', 1)", "named lock", "remove GET_LOCK()"),
            ("SELECT 'unterminated", "cannot be read as SQL", "check quotes"),
            ("SELECT * FROM t\\G", "could not be parsed", "check the syntax"),
            ("-- nothing\n;", "is empty", "write one SELECT"),
            ("   ", "is empty", "write one SELECT"),
        ],
    )
    def test_says_what_and_how_to_fix(self, sql, what, fix):
        with pytest.raises(DatasetError, match=r"(?s)Query refused.*" + what) as raised:
            read_only_statement(sql)
        assert fix in str(raised.value).split("Fix: ", 1)[1]


class TestStorageReadOnly:
    @pytest.fixture
    def warehouse(self, tmp_path: Path) -> Path:
        repo = tmp_path / "warehouse"
        repo.mkdir()
        dolt(repo, "init")
        dolt(repo, "sql", "-q", "CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1);")
        dolt(repo, "commit", "-Am", "t")
        return repo

    @staticmethod
    def run(repo: Path, sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["dolt", "sql", "-q", sql], cwd=repo, capture_output=True, text=True, check=False
        )

    def test_dolt_cannot_write_while_held(self, warehouse):
        with storage_read_only(warehouse):
            for sql in ["CALL dolt_branch('evil')", "INSERT INTO t VALUES (2)", "CALL dolt_gc()"]:
                proc = self.run(warehouse, sql)
                assert proc.returncode == 1
                assert "read only" in proc.stderr + proc.stdout
            assert self.run(warehouse, "SELECT * FROM t").returncode == 0  # reading works
        assert [r["name"] for r in dolt_rows(warehouse, "SELECT name FROM dolt_branches")] == [
            "main"
        ]
        # Control: the same statement does write once the lock is released.
        assert self.run(warehouse, "CALL dolt_branch('evil')").returncode == 0

    def test_queries_hold_it_side_by_side(self, warehouse):
        with storage_read_only(warehouse), storage_read_only(warehouse, timeout=0):
            assert self.run(warehouse, "SELECT 1").returncode == 0

    def test_waits_for_a_writer_then_gives_up_clearly(self, warehouse):
        fd = os.open(warehouse / ".dolt" / "noms" / "LOCK", os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # what a dolt sql-server or shell holds
            with (
                pytest.raises(DatasetError, match=r"(?s)held .* for writing.*Fix: stop that"),
                storage_read_only(warehouse, timeout=0.2),
            ):
                pass
        finally:
            os.close(fd)


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("SELECT a FROM t JOIN u ON t.x = u.x", ["t", "u"]),
        ("WITH c AS (SELECT * FROM T) SELECT * FROM c", ["t"]),
        ("SELECT (SELECT MAX(x) FROM z) FROM t", ["t", "z"]),
        ("SELECT * FROM dolt_log", ["dolt_log"]),
        # what no table version at the query's ref pins
        ("SELECT * FROM t AS OF 'v1'", None),
        ("SELECT * FROM `db/main`.t", None),
        ("SELECT * FROM dolt_diff('a', 'b', 't')", None),
        ("SELECT dolt_hashof('main') AS h", None),
        ("SELECT NOW(), x FROM t", None),
        ("SELECT RAND() FROM t", None),
    ],
)
def test_the_tables_a_query_reads(sql, tables):
    assert tables_read(sql) == tables
