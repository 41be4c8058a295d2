"""A save's commit holds exactly the dataset's table (and its lineage table), nothing pending.

The user has work in progress on the checked-out branch: an unstaged edit in table ``a``, a
staged (``dolt add``) change in table ``b`` and a new, untracked table ``c``. An ``AppendBranch``
save and a ``MergeBranch`` save into that branch must commit only what they wrote, and leave
the pending work exactly as it was (``b`` still staged). Everything is read back with the plain
``dolt`` binary.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kedro_dolt import DoltTableDataset
from tests.conftest import dolt

LINEAGE = "kedro_runs"
#: Dolt's own transient lock errors, retried in this test's plain-CLI setup only.


def frame(i: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "value": [i, i + 1, i + 2]})


def dolt_rows(repo: Path, query: str) -> list[dict[str, Any]]:
    """Rows of one query, run by the plain dolt binary (``{}`` means no rows)."""
    lines = [line for line in dolt(repo, "sql", "-r", "json", "-q", query).splitlines() if line]
    return list(json.loads(lines[-1]).get("rows", [])) if lines else []


def head(repo: Path) -> str:
    return str(dolt_rows(repo, "SELECT dolt_hashof('main') AS h")[0]["h"])


def parents(repo: Path, commit: str) -> list[str]:
    rows = dolt_rows(
        repo,
        "SELECT parent_hash, parent_index FROM dolt_commit_ancestors "
        f"WHERE commit_hash = '{commit}' ORDER BY parent_index",
    )
    return [str(r["parent_hash"]) for r in rows]


def changed_tables(repo: Path, from_ref: str, to_ref: str) -> set[str]:
    """Tables that differ between two refs (``dolt_diff_summary``), by their new name."""
    rows = dolt_rows(repo, f"SELECT * FROM dolt_diff_summary('{from_ref}', '{to_ref}')")
    return {str(r.get("to_table_name") or r.get("from_table_name")) for r in rows}


PENDING_SQL = """
SELECT table_name, staged, status FROM dolt_status ORDER BY table_name, staged;
SELECT * FROM a ORDER BY id;
SELECT * FROM b ORDER BY id;
SELECT * FROM c ORDER BY id;
SELECT to_table_name FROM dolt_diff_summary('HEAD', 'STAGED') ORDER BY 1;
SELECT to_table_name FROM dolt_diff_summary('STAGED', 'WORKING') ORDER BY 1;
SELECT diff_type, from_id, from_v, to_id, to_v FROM dolt_diff('HEAD', 'STAGED', 'b')
ORDER BY to_id;
"""
PENDING_KEYS = ("status", "a", "b", "c", "staged", "unstaged", "b_staged_rows")


def pending(repo: Path) -> dict[str, Any]:
    """The user's uncommitted work as the plain binary shows it (one dolt run)."""
    proc = subprocess.run(
        ["dolt", "sql", "-r", "json"],
        input=PENDING_SQL,
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line).get("rows", []) for line in proc.stdout.splitlines() if line]
    assert len(results) == len(PENDING_KEYS), proc.stdout
    seen = dict(zip(PENDING_KEYS, results, strict=True))
    seen["status"] = [(r["table_name"], r["staged"], r["status"]) for r in seen["status"]]
    seen["staged"] = [r["to_table_name"] for r in seen["staged"]]
    seen["unstaged"] = [r["to_table_name"] for r in seen["unstaged"]]
    return seen


@pytest.fixture
def work_in_progress(repo: Path) -> Path:
    """Saved data, the user's tables a and b, a `base` branch one commit behind main, and the user's
    pending work: a unstaged, b staged, c untracked."""
    DoltTableDataset(
        database=str(repo),
        table="data",
        save_args={"primary_key": "id"},
        meta={"table": LINEAGE},
    ).save(frame(0))
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE a (id int primary key, v varchar(20));"
        "CREATE TABLE b (id int primary key, v varchar(20));"
        "INSERT INTO a VALUES (1, 'a1'), (2, 'a2');"
        "INSERT INTO b VALUES (1, 'b1'), (2, 'b2');",
    )
    dolt(repo, "add", "a", "b")
    dolt(repo, "commit", "-m", "the user's tables")
    dolt(repo, "branch", "base", "main")
    # main moves on from base: a MergeBranch save from base makes a real merge commit.
    dolt(repo, "sql", "-q", "CREATE TABLE d (id int primary key); INSERT INTO d VALUES (1);")
    dolt(repo, "add", "d")
    dolt(repo, "commit", "-m", "main moves on")
    dolt(repo, "sql", "-q", "UPDATE a SET v = 'a1 unstaged' WHERE id = 1;")
    dolt(repo, "sql", "-q", "UPDATE b SET v = 'b2 staged' WHERE id = 2;")
    dolt(repo, "add", "b")
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE c (id int primary key, v varchar(20)); INSERT INTO c VALUES (1, 'c1');",
    )
    seen = pending(repo)
    assert seen["status"] == [("a", 0, "modified"), ("b", 1, "modified"), ("c", 0, "new table")]
    assert seen["staged"] == ["b"]
    assert seen["unstaged"] == ["a", "c"]
    return repo


@pytest.mark.parametrize("lineage", [True, False], ids=["with-lineage", "no-lineage"])
def test_append_save_commits_only_its_table(work_in_progress: Path, lineage: bool) -> None:
    repo = work_in_progress
    before, old_head = pending(repo), head(repo)
    DoltTableDataset(
        database=str(repo),
        table="data",
        save_args={"primary_key": "id"},
        meta={"table": LINEAGE} if lineage else None,
    ).save(frame(10))
    new_head = head(repo)
    expected = {"data", LINEAGE} if lineage else {"data"}
    assert changed_tables(repo, old_head, new_head) == expected
    assert parents(repo, new_head) == [old_head], "the save is one commit on main"
    assert changed_tables(repo, "HEAD~1", "HEAD") == expected
    assert dolt_rows(repo, "SELECT id, value FROM data AS OF 'HEAD' ORDER BY id") == frame(
        10
    ).to_dict(orient="records")
    assert pending(repo) == before, "the user's pending work changed"


@pytest.mark.parametrize("lineage", [True, False], ids=["with-lineage", "no-lineage"])
def test_merge_save_commits_only_its_table(work_in_progress: Path, lineage: bool) -> None:
    """`base` is behind main: a real merge commit into the checked-out main, which must not
    sweep in the pending a / b / c."""
    repo = work_in_progress
    before, old_head = pending(repo), head(repo)
    DoltTableDataset(
        database=str(repo),
        table="scores",
        branch={"strategy": "merge", "from": "base", "into": "main"},
        save_args={"primary_key": "id"},
        meta={"table": LINEAGE} if lineage else None,
    ).save(frame(20))
    new_head = head(repo)
    assert new_head != old_head
    expected = {"scores", LINEAGE} if lineage else {"scores"}
    assert changed_tables(repo, old_head, new_head) == expected
    assert parents(repo, new_head)[:1] == [old_head], "main's previous head is the first parent"
    assert changed_tables(repo, "HEAD~1", "HEAD") == expected
    assert dolt_rows(repo, "SELECT id, value FROM scores AS OF 'HEAD' ORDER BY id") == frame(
        20
    ).to_dict(orient="records")
    assert pending(repo) == before, "the user's pending work changed"
    branches = [r["name"] for r in dolt_rows(repo, "SELECT name FROM dolt_branches")]
    assert sorted(branches) == ["base", "main"], "temporary branches are left"
