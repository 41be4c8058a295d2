"""Issue 19: a load returns exactly the frame that was saved, index and row order included, as
Parquet does (``save_args.index``, see kedro_dolt/datasets/layout.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError
from kedro_datasets.pandas import ParquetDataset

from kedro_dolt import DoltTableDataset
from tests.conftest import dolt_rows

BOTH_ENGINES = True
SERVED_TOO = True


def columns(repo) -> list[str]:
    rows = dolt_rows(
        repo,
        "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = database() AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
    )
    return [r["c"] for r in rows]


def dataset(repo, key=None, **save_args) -> DoltTableDataset:
    return DoltTableDataset(**repo.args, table="t", save_args={"primary_key": key, **save_args})


def base(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "x": np.linspace(0.0, 1.0, n),
            "s": pd.Series([f"r{i}" for i in range(n)], dtype="str"),
        }
    )


def shuffled(n: int = 8) -> pd.DataFrame:
    return base(n).sample(frac=1, random_state=7)


def frames() -> dict[str, pd.DataFrame]:
    gappy = base(12)
    gappy.loc[[2, 5, 9], "x"] = np.nan
    multi = base(6).set_index(["s", "id"])
    unnamed_multi = base(6)
    unnamed_multi.index = pd.MultiIndex.from_arrays([[1, 1, 2, 2, 3, 3], list("abcdef")])
    return {
        "keyed-unsorted": shuffled().reset_index(drop=True),
        "shuffled-index": shuffled(),
        "gappy-after-dropna": gappy.dropna(),
        "named-index": base().set_index("s"),
        "multiindex": multi,
        "unnamed-multiindex": unnamed_multi,
        "datetime-index": base().set_index(
            pd.date_range("2026-01-01", periods=8, freq="h", tz="Europe/Paris", name="when")
        ),
        "duplicate-index": base().set_index(pd.Index([3, 1, 1, 2, 2, 0, 5, 4])),
        "empty": base(0),
    }


class TestParityWithParquet:
    @pytest.mark.parametrize(
        ("name", "key"),
        [(name, None) for name in sorted(frames())]
        + [
            (name, "id")
            for name in sorted(frames())
            # A reordering of a key-sorted frame loads in key order (tested below); the
            # multiindex frame has no id column to key it by.
            if name not in ("shuffled-index", "multiindex")
        ],
    )
    def test_load_equals_what_parquet_loads(self, repo, tmp_path, name, key):
        frame = frames()[name]
        parquet = ParquetDataset(filepath=str(tmp_path / "t.parquet"))
        parquet.save(frame)
        saving = dataset(repo, key)
        saving.save(frame)
        loaded = saving.load()
        pd.testing.assert_frame_equal(loaded, parquet.load())
        pd.testing.assert_frame_equal(loaded, frame, check_freq=False)  # Parquet drops it too

    def test_keyed_frame_in_key_order_stores_only_its_columns(self, repo):
        saving = dataset(repo, "id")
        saving.save(base())
        assert columns(repo) == ["id", "x", "s"]
        pd.testing.assert_frame_equal(saving.load(), base())

    def test_keyless_frame_keeps_its_order_in_an_index_column(self, repo):
        saving = dataset(repo)
        saving.save(shuffled().reset_index(drop=True))
        assert columns(repo) == ["index", "id", "x", "s"]

    def test_an_index_that_is_not_in_order_also_keeps_the_order(self, repo):
        frame = shuffled()
        frame.index = frame.index[::-1]  # labels that key order does not give back
        saving = dataset(repo, "id")
        saving.save(frame)
        assert columns(repo) == ["index", "id", "x", "s", "kedro_dolt_row"]
        pd.testing.assert_frame_equal(saving.load(), frame)

    def test_a_reordered_keyed_frame_is_the_same_table_and_loads_in_key_order(self, repo):
        saving = dataset(repo, "id")
        saving.save(base())
        head = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
        saving.save(shuffled())  # each row keeps its label: only the order differs
        assert dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"] == head
        assert columns(repo) == ["id", "x", "s"]
        pd.testing.assert_frame_equal(saving.load(), base())

    def test_unchanged_save_makes_no_commit_and_a_change_one_row(self, repo):
        saving = dataset(repo, "id")
        frame = shuffled().reset_index(drop=True)
        saving.save(frame)
        head = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
        saving.save(frame.copy())
        assert dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"] == head
        changed = frame.copy()
        changed.loc[3, "x"] = 42.0
        saving.save(changed)
        stat = dolt_rows(repo, "SELECT * FROM dolt_diff_stat('HEAD~1', 'HEAD', 't')")[0]
        assert (stat["rows_added"], stat["rows_modified"], stat["rows_deleted"]) == (0, 1, 0)
        pd.testing.assert_frame_equal(saving.load(), changed)


class TestIndexOption:
    def test_false_drops_the_index_and_loads_in_key_order(self, repo):
        saving = dataset(repo, "id", index=False)
        saving.save(shuffled())
        assert columns(repo) == ["id", "x", "s"]
        pd.testing.assert_frame_equal(saving.load(), base())

    def test_true_stores_even_a_default_index(self, repo):
        saving = dataset(repo, "id", index=True)
        saving.save(base())
        assert columns(repo) == ["index", "id", "x", "s"]
        pd.testing.assert_frame_equal(saving.load(), base())

    def test_invalid_value(self, repo):
        with pytest.raises(DatasetError, match=r"save_args.index 'yes'[\s\S]*Fix"):
            dataset(repo, "id", index="yes")

    def test_load_columns_keep_the_index(self, repo):
        frame = base().set_index("s")
        dataset(repo, "id").save(frame)
        selected = DoltTableDataset(**repo.args, table="t", load_args={"columns": ["x"]})
        pd.testing.assert_frame_equal(selected.load(), frame[["x"]])

    def test_a_column_named_index_moves_the_unnamed_index_to_level_0(self, repo):
        frame = shuffled().reset_index(drop=True).rename(columns={"x": "index"})
        saving = dataset(repo, "id")
        saving.save(frame)
        assert columns(repo)[0] == "level_0"
        pd.testing.assert_frame_equal(saving.load(), frame)

    def test_an_index_name_that_is_a_column_is_refused(self, repo):
        frame = base().set_index(pd.Index(range(8), name="id"))
        with pytest.raises(DatasetError, match=r"column 'id'[\s\S]*Fix"):
            dataset(repo, "id").save(frame)

    def test_append_stores_no_index(self, repo):
        dataset(repo, "id").save(base(6).iloc[:3])
        appending = dataset(repo, "id", mode="append")
        appending.save(base(6).iloc[3:])
        assert columns(repo) == ["id", "x", "s"]
        pd.testing.assert_frame_equal(appending.load(), base(6))
