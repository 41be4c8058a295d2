"""Issue 9's save paths, for correctness (speed is `make bench`'s): unchanged saves, keyed
deltas, save modes, and the fall back to a full write when someone else changed the table.
Everything is read back with the plain ``dolt`` CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset, MergeBranch
from tests.conftest import dolt, dolt_rows, engine_of

#: Every test taking ``repo`` runs on the CLI and the server engine (see conftest).
BOTH_ENGINES = True


def frame(n: int = 1000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "x": np.linspace(0, 1, n),
            "s": pd.Series([f"row {i}" for i in range(n)], dtype=object),
        }
    )


def head(repo: Path) -> str:
    return str(dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"])


def table_rows(repo: Path, table: str = "t") -> list[dict]:
    return dolt_rows(repo, f"SELECT * FROM `{table}` ORDER BY id")


def diff_stat(repo: Path) -> dict:
    rows = dolt_rows(repo, "SELECT * FROM dolt_diff_stat('HEAD~1', 'HEAD', 't')")
    return {k: rows[0][k] for k in ("rows_added", "rows_deleted", "rows_modified")}


def changed_ids(repo: Path) -> set[int]:
    rows = dolt_rows(repo, "SELECT to_id, from_id FROM dolt_diff('HEAD~1', 'HEAD', 't')")
    return {r.get("to_id", r.get("from_id")) for r in rows}


def same_table(repo: Path, expected: pd.DataFrame) -> None:
    want = expected.sort_values("id").reset_index(drop=True)
    got = pd.DataFrame(table_rows(repo))
    assert got["id"].tolist() == want["id"].tolist()
    assert got["s"].tolist() == want["s"].tolist()
    np.testing.assert_array_equal(got["x"].to_numpy(), want["x"].to_numpy())


@pytest.fixture
def keyed(repo: Path) -> DoltTableDataset:
    return DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})


class TestUnchanged:
    def test_unchanged_save_makes_no_commit_and_does_not_write(self, repo, keyed):
        keyed.save(frame())
        before = head(repo)
        table_hash = dolt_rows(repo, "SELECT dolt_hashof_table('t') AS h")[0]["h"]
        keyed.save(frame().sample(frac=1, random_state=1))  # same rows, another order
        assert head(repo) == before
        assert dolt_rows(repo, "SELECT dolt_hashof_table('t') AS h")[0]["h"] == table_hash
        assert dolt_rows(repo, "SELECT COUNT(*) AS n FROM dolt_status") == [{"n": 0}]
        # Nothing was written: Dolt's working set was not even touched (no scratch branch).
        assert [b["name"] for b in dolt_rows(repo, "SELECT name FROM dolt_branches")] == ["main"]

    def test_keyless_unchanged_save_makes_no_commit(self, repo):
        dataset = DoltTableDataset(**repo.args, table="t")
        dataset.save(frame(50))
        before = head(repo)
        dataset.save(frame(50))
        assert head(repo) == before

    def test_a_dtype_change_is_a_change(self, repo, keyed):
        keyed.save(frame())
        before = head(repo)
        keyed.save(frame().astype({"x": "float32"}))
        assert head(repo) != before


class TestSmallChange:
    def test_commit_diff_is_exactly_the_changed_rows(self, repo, keyed):
        original = frame()
        keyed.save(original)
        changed = original.copy()
        changed.loc[changed["id"].isin([3, 500]), "x"] = -1.0
        changed = changed[~changed["id"].isin([7, 8])]
        changed = pd.concat(
            [changed, pd.DataFrame({"id": [5000], "x": [2.0], "s": ["new"]})], ignore_index=True
        )
        keyed.save(changed)
        assert diff_stat(repo) == {"rows_added": 1, "rows_deleted": 2, "rows_modified": 2}
        assert changed_ids(repo) == {3, 500, 7, 8, 5000}
        same_table(repo, changed)
        pd.testing.assert_frame_equal(
            keyed.load(), changed.sort_values("id").reset_index(drop=True), check_dtype=True
        )

    def test_text_null_and_composite_keys_in_a_delta(self, repo):
        data = pd.DataFrame(
            {
                "a": ["x", "x", "y"],
                "b": [1, 2, 1],
                "v": pd.Series(["NULL", None, "z"], dtype=object),
            }
        )
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": ["a", "b"]})
        dataset.save(data)
        changed = data.copy()
        changed.loc[2, "v"] = "NULL"
        changed = changed.drop(index=0)
        dataset.save(changed)
        rows = dolt_rows(repo, "SELECT a, b, v, v IS NULL AS n FROM t ORDER BY a, b")
        assert rows == [
            {"a": "x", "b": 2, "n": True},
            {"a": "y", "b": 1, "v": "NULL", "n": False},
        ]

    def test_large_change_still_correct(self, repo, keyed):
        keyed.save(frame())
        replaced = frame().assign(x=lambda f: f["x"] + 1)
        keyed.save(replaced)
        same_table(repo, replaced)
        assert diff_stat(repo)["rows_modified"] == len(replaced)


class TestSomeoneElseChangedTheTable:
    def test_plain_dolt_update_then_save(self, repo, keyed):
        keyed.save(frame())
        dolt(repo, "sql", "-q", "UPDATE t SET s = 'theirs' WHERE id = 10")
        dolt(repo, "commit", "-am", "a hand edit")
        wanted = frame()
        wanted.loc[wanted["id"] == 20, "s"] = "mine"
        keyed.save(wanted)
        same_table(repo, wanted)  # id 10 is back to 'row 10': the table equals the frame

    def test_merged_branch_then_save(self, repo, keyed):
        keyed.save(frame())
        dolt(
            repo,
            "sql",
            "-q",
            "CALL dolt_checkout('-b', 'side'); DELETE FROM t WHERE id < 5; "
            "CALL dolt_commit('-am', 'side deletes'); CALL dolt_checkout('main'); "
            "CALL dolt_merge('side');",
        )
        keyed.save(frame())
        same_table(repo, frame())

    def test_fingerprint_file_lost_or_corrupt(self, repo, keyed):
        keyed.save(frame())
        kept = list(engine_of(repo).transport.cache_dir.rglob("*.parquet"))
        assert kept  # the save kept its fingerprint
        for path in kept:
            path.write_bytes(b"garbage")
        changed = frame().assign(s="all new")
        keyed.save(changed)
        same_table(repo, changed)

    def test_newest_fingerprint_from_another_branch(self, repo, keyed):
        """The delta is planned against the newest fingerprint, here the other branch's
        version of the table: the in-script guard refuses it and the save writes in full."""
        keyed.save(frame())
        dolt(repo, "sql", "-q", "CALL dolt_branch('exp')")
        on_exp = DoltTableDataset(
            **repo.args, table="t", branch="exp", save_args={"primary_key": "id"}
        )
        on_exp.save(frame().assign(s="exp"))
        wanted = frame()
        wanted.loc[wanted["id"] == 3, "x"] = 42.0
        keyed.save(wanted)
        same_table(repo, wanted)
        assert diff_stat(repo) == {"rows_added": 0, "rows_deleted": 0, "rows_modified": 1}

    def test_external_change_between_fingerprint_and_save_is_caught(self, repo, keyed):
        """The in-script guard: a delta planned against one table hash never applies to
        another (here the table is edited, uncommitted, after the fingerprint was taken, so
        the save must refuse rather than merge a delta into foreign rows)."""
        keyed.save(frame())
        dolt(repo, "sql", "-q", "UPDATE t SET s = 'uncommitted' WHERE id = 1")
        with pytest.raises(DatasetError, match="uncommitted changes"):
            keyed.save(frame().assign(x=0.0))
        assert dolt_rows(repo, "SELECT s FROM t WHERE id = 1") == [{"s": "uncommitted"}]


class TestModes:
    def test_append_inserts_rows(self, repo):
        appending = DoltTableDataset(
            **repo.args, table="t", save_args={"primary_key": "id", "mode": "append"}
        )
        appending.save(frame(3))
        appending.save(frame(6).iloc[3:])
        assert [r["id"] for r in table_rows(repo)] == [0, 1, 2, 3, 4, 5]
        assert diff_stat(repo) == {"rows_added": 3, "rows_deleted": 0, "rows_modified": 0}

    def test_append_of_an_existing_key_is_a_clear_error(self, repo):
        appending = DoltTableDataset(
            **repo.args, table="t", save_args={"primary_key": "id", "mode": "append"}
        )
        appending.save(frame(3))
        before = head(repo)
        with pytest.raises(DatasetError, match=r"mode append inserts new rows[\s\S]*upsert"):
            appending.save(frame(4))
        assert head(repo) == before
        assert len(table_rows(repo)) == 3

    def test_append_keyless(self, repo):
        appending = DoltTableDataset(**repo.args, table="t", save_args={"mode": "append"})
        appending.save(frame(2))
        appending.save(frame(2))
        assert dolt_rows(repo, "SELECT COUNT(*) AS n FROM t") == [{"n": 4}]

    def test_upsert_replaces_by_key_and_keeps_the_rest(self, repo):
        upserting = DoltTableDataset(
            **repo.args, table="t", save_args={"primary_key": "id", "mode": "upsert"}
        )
        upserting.save(frame(5))
        upserting.save(pd.DataFrame({"id": [1, 9], "x": [10.0, 90.0], "s": ["one", "nine"]}))
        rows = {r["id"]: (r["x"], r["s"]) for r in table_rows(repo)}
        assert rows[1] == (10.0, "one") and rows[9] == (90.0, "nine")
        assert rows[0] == (0.0, "row 0") and len(rows) == 6
        assert diff_stat(repo) == {"rows_added": 1, "rows_deleted": 0, "rows_modified": 1}

    def test_upsert_needs_a_key(self, repo):
        with pytest.raises(DatasetError, match=r"upsert[\s\S]*primary_key[\s\S]*Fix"):
            DoltTableDataset(**repo.args, table="t", save_args={"mode": "upsert"})

    @pytest.mark.parametrize("mode", ["append", "upsert"])
    def test_mode_with_another_schema_is_refused(self, repo, mode):
        DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"}).save(frame(3))
        before = head(repo)
        dataset = DoltTableDataset(
            **repo.args, table="t", save_args={"primary_key": "id", "mode": mode}
        )
        with pytest.raises(DatasetError, match=rf"Cannot {mode} into table 't'[\s\S]*Fix"):
            dataset.save(frame(3).assign(extra=1))
        assert head(repo) == before

    def test_unknown_mode(self, repo):
        with pytest.raises(DatasetError, match=r"Invalid save_args.mode 'merge'[\s\S]*Fix"):
            DoltTableDataset(**repo.args, table="t", save_args={"mode": "merge"})

    def test_upsert_through_merge_branch(self, repo):
        DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"}).save(frame(3))
        start = head(repo)
        DoltTableDataset(
            **repo.args,
            table="t",
            branch=MergeBranch(branch_from=start, merge_to="main"),
            save_args={"primary_key": "id", "mode": "upsert"},
        ).save(pd.DataFrame({"id": [2, 3], "x": [5.0, 6.0], "s": ["two", "three"]}))
        assert [r["id"] for r in table_rows(repo)] == [0, 1, 2, 3]
        assert table_rows(repo)[2]["s"] == "two"
