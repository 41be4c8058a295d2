"""Issue 8's data-loss paths, each against real Dolt: what used to lose or change data, and the
errors that used to be unclear. Repositories are read back through the plain ``dolt`` CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from kedro_dolt import DoltTableDataset, MergeBranch
from kedro_dolt.engine import dolt_summary
from tests.conftest import dolt, dolt_rows
from tests.support.repo_snapshot import snapshot


@pytest.fixture
def busy_repo(repo: Path) -> Path:
    """A repository with a committed table ``t`` and the user's pending work: an unstaged
    edit of ``other``, a staged change of ``staged``, an untracked table ``fresh``."""
    DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"}).save(
        pd.DataFrame({"id": [1, 2], "v": ["a", "b"]})
    )
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE other (x INT PRIMARY KEY); INSERT INTO other VALUES (1);"
        "CREATE TABLE staged (x INT PRIMARY KEY);",
    )
    dolt(repo, "add", "other", "staged")
    dolt(repo, "commit", "-m", "user tables")
    dolt(
        repo,
        "sql",
        "-q",
        "INSERT INTO other VALUES (2); INSERT INTO staged VALUES (7);"
        "CREATE TABLE fresh (z INT PRIMARY KEY); INSERT INTO fresh VALUES (3);",
    )
    dolt(repo, "add", "staged")
    return repo


class TestNamesNeverBecomeOptions:
    """Item 2: table='--hard' made a failed save's cleanup run dolt_reset('--hard')."""

    @pytest.mark.parametrize("table", ["--hard", "-A", "-x", "--force", "-"])
    def test_dash_names_are_refused_and_nothing_changes(self, busy_repo, table):
        before = snapshot(busy_repo)
        with pytest.raises(DatasetError, match=r"Invalid table .*start with a letter"):
            DoltTableDataset(database=str(busy_repo), table=table).save(pd.DataFrame({"x": [1]}))
        assert snapshot(busy_repo) == before


class TestPrimaryKeyChange:
    """Item 3: changing the key raised "nothing was changed" after the commit landed."""

    def test_key_change_commits_once_and_tags_it(self, repo):
        DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"}).save(
            pd.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
        )
        heads_before = dolt_rows(repo, "SELECT commit_hash FROM dolt_log")
        rekeyed = DoltTableDataset(
            database=str(repo),
            table="t",
            save_args={"primary_key": ["id", "v"], "tag": "rekeyed"},
        )
        rekeyed.save(pd.DataFrame({"id": [1, 2], "v": ["a", "z"]}))
        log = dolt_rows(repo, "SELECT commit_hash FROM dolt_log")
        assert len(log) == len(heads_before) + 1
        assert dolt_rows(repo, "SELECT tag_hash FROM dolt_tags") == [
            {"tag_hash": log[0]["commit_hash"]}
        ]
        keys = dolt_rows(
            repo,
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            "WHERE TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
        )
        assert [k["COLUMN_NAME"] for k in keys] == ["id", "v"]
        assert rekeyed.load().to_dict("list") == {"id": [1, 2], "v": ["a", "z"]}

    def test_key_change_stats_count_replaced_rows(self, repo):
        from kedro_dolt.engine import DoltCLIEngine
        from kedro_dolt.engine.schema import TableSchema

        old = pd.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
        new = pd.DataFrame({"id": [1, 2], "v": ["a", "z"]})
        engine = DoltCLIEngine(repo)
        engine.write_table(
            "t", old, schema=TableSchema.from_frame(old, ["id"]), branch=None, message="one"
        )
        result = engine.write_table(
            "t", new, schema=TableSchema.from_frame(new, ["id", "v"]), branch=None, message="two"
        )
        assert result.committed
        assert (result.stats.added, result.stats.deleted) == (2, 3)


class TestTextThatLooksLikeNull:
    """Item 4: the string "NULL" was stored as SQL NULL."""

    @pytest.mark.parametrize("dtype", [object, "string", "str"])
    @pytest.mark.parametrize("key", [None, "s"])
    def test_null_like_strings_round_trip(self, repo, dtype, key):
        values = ["NULL", "nan", "null", "NaN", "None", "\\N", "~NULL", "", "N\\ULL"]
        frame = pd.DataFrame({"s": pd.Series(values, dtype=dtype), "n": range(len(values))})
        if key is None:
            frame.loc[len(frame)] = [None, len(frame)]
            frame["s"] = frame["s"].astype(dtype)
        dataset = DoltTableDataset(
            database=str(repo),
            table="t",
            save_args={"primary_key": key or "n"},
        )
        dataset.save(frame)
        stored = dolt_rows(repo, "SELECT s, s IS NULL AS is_null FROM t ORDER BY n")
        assert [r.get("s") for r in stored[: len(values)]] == values
        assert not any(r["is_null"] for r in stored[: len(values)])
        if key is None:
            assert stored[-1]["is_null"]
        loaded = dataset.load()
        assert loaded.sort_values("n")["s"].tolist()[: len(values)] == values


class TestColumnNames:
    """Item 6: 'a ' and 'a' were committed, then every load failed."""

    @pytest.mark.parametrize("columns", [["a", "a "], ["a "], [" a"], ["a", " a "]])
    def test_edge_spaces_are_refused(self, busy_repo, columns):
        before = snapshot(busy_repo)
        frame = pd.DataFrame([[1] * len(columns)], columns=columns)
        with pytest.raises(DatasetError, match=r"leading or trailing spaces[\s\S]*Fix: strip"):
            DoltTableDataset(database=str(busy_repo), table="t").save(frame)
        assert snapshot(busy_repo) == before


class TestClearErrors:
    """Item 10: errors that were raw TypeErrors, KeyErrors, Go dumps or said nothing."""

    def test_zero_column_frame(self, busy_repo):
        before = snapshot(busy_repo)
        with pytest.raises(DatasetError, match=r"no columns[\s\S]*Fix: save a DataFrame"):
            DoltTableDataset(database=str(busy_repo), table="t").save(pd.DataFrame())
        assert snapshot(busy_repo) == before

    @pytest.mark.parametrize("key", [1, [1], {"id": 1}, ["id", "ID"]])
    def test_bad_primary_key_shapes(self, repo, key):
        with pytest.raises(DatasetError, match=r"Invalid save_args.primary_key[\s\S]*Fix:"):
            DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": key})

    def test_sparse_column(self, busy_repo):
        before = snapshot(busy_repo)
        frame = pd.DataFrame({"x": pd.arrays.SparseArray([0, 0, 1])})
        with pytest.raises(DatasetError, match=r"sparse[\s\S]*Fix: densify"):
            DoltTableDataset(database=str(busy_repo), table="t").save(frame)
        assert snapshot(busy_repo) == before

    def test_lone_surrogate_names_column_and_row(self, busy_repo):
        before = snapshot(busy_repo)
        # object dtype: pandas 3's str dtype (Arrow) cannot even hold a lone surrogate.
        frame = pd.DataFrame({"id": [1, 2], "v": pd.Series(["fine", "bad\ud800"], dtype=object)})
        with pytest.raises(DatasetError, match=r"Column 'v', row 1[\s\S]*surrogate[\s\S]*Fix:"):
            DoltTableDataset(database=str(busy_repo), table="t").save(frame)
        assert snapshot(busy_repo) == before

    @pytest.mark.parametrize("below", ["", "sub/dir"])
    def test_database_path_that_is_a_file(self, tmp_path, below):
        path = tmp_path / "warehouse"
        path.write_text("not a repository")
        dataset = DoltTableDataset(database=str(path / below), table="t")
        for action in (lambda: dataset.save(pd.DataFrame({"x": [1]})), dataset.load):
            with pytest.raises(DatasetError, match=r"is a file, not a directory[\s\S]*Fix:"):
                action()
        assert path.read_text() == "not a repository"

    def test_unknown_run_id_is_named(self, repo):
        DoltTableDataset(database=str(repo), table="t").save(pd.DataFrame({"x": [1]}))
        run_id = "2020-01-01T00.00.00.000Z"
        versioned = DoltTableDataset(
            database=str(repo), table="t", version=Version(load=run_id, save=None)
        )
        with pytest.raises(DatasetError, match=rf"Kedro run '{run_id}'[\s\S]*Fix: check"):
            versioned.load()

    def test_schema_conflict_in_merge_is_explained(self, repo):
        frame = pd.DataFrame({"id": [1, 2], "v": [1, 2]})
        DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"}).save(frame)
        start = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
        dolt(repo, "sql", "-q", "ALTER TABLE t ADD COLUMN w INT COMMENT 'pandas:int64'")
        dolt(repo, "commit", "-am", "main adds w")
        before = snapshot(repo)
        merging = DoltTableDataset(
            database=str(repo),
            table="t",
            branch=MergeBranch(branch_from=start, merge_to="main", on_conflict="theirs"),
            save_args={"primary_key": "id"},
        )
        with pytest.raises(DatasetError) as raised:
            merging.save(pd.DataFrame({"id": [1, 2], "w": ["x", "y"]}))
        message = str(raised.value)
        assert "schema conflict" in message and "Fix:" in message
        assert "%!" not in message and "&{" not in message  # no Go struct dump
        assert snapshot(repo) == before

    def test_go_panic_stack_is_summarised(self):
        panic = (
            "panic: goroutine 1 [running]:\n\truntime/debug.Stack()\n"
            "\t\truntime/debug/stack.go:26 +0x5e\n"
            "fatal: write /x/.dolt/noms/journal.idx: no space left on device\n"
        )
        summary = dolt_summary(panic)
        assert "no space left on device" in summary
        assert "stack.go" not in summary and "runtime/debug" not in summary


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 24 MB tmpfs: the disk-full fault, produced for real (needs root, as here)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"cannot mount a tmpfs for the disk-full test: {proc.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_a_clear_error_and_loses_nothing(tiny_disk):
    repo = tiny_disk / "warehouse"
    dataset = DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"})
    dataset.save(pd.DataFrame({"id": [1], "s": ["kept"]}))
    heads = dolt_rows(repo, "SELECT name, hash FROM dolt_branches")
    rows = 400_000
    big = pd.DataFrame({"id": np.arange(rows), "s": [f"{'y' * 60}{i}" for i in range(rows)]})
    with pytest.raises(DatasetError) as raised:
        dataset.save(big)
    message = str(raised.value)
    assert "disk" in message and "full" in message and "Fix:" in message
    assert ".go:" not in message and "runtime/debug" not in message
    # Dolt needs room even to open the store: grow the disk, then nothing may be lost.
    subprocess.run(["mount", "-o", "remount,size=256m", str(tiny_disk)], check=True)
    assert dolt_rows(repo, "SELECT name, hash FROM dolt_branches") == heads
    assert dolt_rows(repo, "SELECT * FROM t") == [{"id": 1, "s": "kept"}]
    assert dolt_rows(repo, "SELECT COUNT(*) AS n FROM dolt_status") == [{"n": 0}]
    assert os.path.isdir(repo / ".dolt")
