"""Issue 15: the fast paths, save modes and server engine never change data silently.

Each class is one class of problem the issue names; each test attacks it and then checks what
the promise says, reading the repository with plain ``dolt`` or a plain MySQL connection."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset
from tests.conftest import dolt_rows, foreign, state

#: Every test taking ``repo`` runs on the CLI and the server engine (see conftest).
BOTH_ENGINES = True
SERVED_TOO = True

MODES = ["overwrite", "append", "upsert"]


def head(repo: Path, branch: str = "main") -> str:
    return str(dolt_rows(repo, f"SELECT dolt_hashof('{branch}') AS h")[0]["h"])


def commit_count(repo: Path, branch: str = "main") -> int:
    return int(dolt_rows(repo, f"SELECT COUNT(*) AS n FROM dolt_log('{branch}')")[0]["n"])


def ids(repo: Path, table: str = "t", branch: str = "main") -> list[int]:
    rows = dolt_rows(repo, f"SELECT id FROM `{table}` AS OF '{branch}' ORDER BY id")
    return [int(r["id"]) for r in rows]


def dataset(repo: Path, mode: str = "overwrite", key: Any = "id", **kwargs: Any) -> Any:
    return DoltTableDataset(
        **repo.args, table="t", save_args={"primary_key": key, "mode": mode}, **kwargs
    )


def frame(keys: list[int], tag: str = "row") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.array(keys, dtype="int64"),
            "x": np.array([k / 7 for k in keys], dtype="float64"),
            "s": pd.Series([f"{tag} {k}" for k in keys], dtype=object),
        }
    )


def refused_cleanly(repo: Path, action: Any, *phrases: str) -> DatasetError:
    """``action`` raises a DatasetError naming ``phrases`` and the repository is as before."""
    before = state(repo)
    with pytest.raises(DatasetError) as info:
        action()
    for phrase in phrases:
        assert phrase in str(info.value), str(info.value)
    assert state(repo) == before
    return info.value


class TestDuplicateKeys:
    """Items 1 and 11: a key repeated inside the frame is refused in every mode, before
    anything is written, and the message says the frame holds it twice."""

    @pytest.mark.parametrize("mode", MODES)
    def test_repeated_key_is_refused_in_every_mode(self, repo, mode):
        dataset(repo).save(frame([1]))
        twice = pd.concat([frame([2], "x"), frame([2], "y")], ignore_index=True)
        error = refused_cleanly(
            repo, lambda: dataset(repo, mode).save(twice), "duplicate", "[2]", "Fix:"
        )
        assert "already in the table" not in str(error)  # item 11: not the table's fault
        assert ids(repo) == [1]

    def test_upsert_refusal_keeps_later_overwrites_exact(self, repo):
        """The issue's sequence: upsert {2:x, 2:y}, then overwrite {1:a, 2:x}."""
        dataset(repo).save(frame([1]))
        twice = pd.concat([frame([2], "x"), frame([2], "y")], ignore_index=True)
        with pytest.raises(DatasetError, match="duplicate"):
            dataset(repo, "upsert").save(twice)
        wanted = pd.concat([frame([1]), frame([2], "x")], ignore_index=True)
        dataset(repo).save(wanted)
        pd.testing.assert_frame_equal(dataset(repo).load(), wanted)

    @pytest.mark.parametrize("mode", MODES)
    def test_composite_key_repeated(self, repo, mode):
        keyed = pd.DataFrame({"a": [1, 1, 2], "b": ["p", "q", "p"], "v": [1.0, 2.0, 3.0]})
        dataset(repo, key=["a", "b"]).save(keyed)
        again = pd.DataFrame({"a": [5, 5], "b": ["z", "z"], "v": [1.0, 2.0]})
        refused_cleanly(
            repo, lambda: dataset(repo, mode, key=["a", "b"]).save(again), "duplicate", "5"
        )


class TestForeignCommitDuringSave:
    """Item 2: a writer that commits between a save's read and its write is never missing
    from the fingerprint kept for the result (a later overwrite must remove its row)."""

    @pytest.mark.parametrize("mode", ["append", "upsert"])
    def test_foreign_row_is_removed_by_the_next_overwrite(self, repo, mode, monkeypatch):
        dataset(repo).save(frame([0, 1, 2, 3, 4]))  # an overwrite: its fingerprint is kept
        saving = dataset(repo, mode)
        transport = saving.engine.transport
        original = transport.run
        fired: list[bool] = []

        def run(statements: Any, **kwargs: Any) -> Any:
            if not fired and any(not isinstance(s, str) for s in statements):  # the write
                fired.append(True)
                foreign(
                    repo,
                    "INSERT INTO t (id, x, s) VALUES (100, 1.5, 'theirs')",
                    "CALL dolt_commit('-am', 'someone else')",
                )
            return original(statements, **kwargs)

        monkeypatch.setattr(transport, "run", run)
        saving.save(frame([5, 6]))
        assert fired
        assert ids(repo) == [0, 1, 2, 3, 4, 5, 6, 100]
        wanted = frame(list(range(7)))
        before = commit_count(repo)
        dataset(repo).save(wanted)
        assert ids(repo) == list(range(7))
        assert commit_count(repo) == before + 1
        pd.testing.assert_frame_equal(dataset(repo).load(), wanted)


class TestStoredPrecision:
    """Item 3: keys are compared at the precision Dolt stores (microseconds), on every
    path: a frame whose keys collide there is refused as a full write refuses it."""

    @staticmethod
    def stamps(n: int) -> pd.DataFrame:
        times = pd.date_range("2026-01-01", periods=n, freq="s").astype("datetime64[ns]")
        return pd.DataFrame({"ts": times, "v": np.arange(n, dtype="int64")})

    @pytest.mark.parametrize("mode", MODES)
    def test_keys_equal_below_a_microsecond_are_refused(self, repo, mode):
        base = self.stamps(10)
        dataset(repo, key="ts").save(base)
        near = pd.DataFrame({"ts": [base["ts"][3] + pd.Timedelta(1, "ns")], "v": [99]})
        bad = pd.concat([base, near], ignore_index=True)
        refused_cleanly(repo, lambda: dataset(repo, mode, key="ts").save(bad), "duplicate")
        pd.testing.assert_frame_equal(dataset(repo, key="ts").load(), base)

    def test_a_nanosecond_change_is_not_a_change(self, repo):
        base = self.stamps(5)
        saving = dataset(repo, key="v")
        saving.save(base)
        before = head(repo)
        saving.save(base.assign(ts=base["ts"] + pd.Timedelta(1, "ns")))
        assert head(repo) == before  # Dolt stores microseconds: nothing changed there


class TestNullHashing:
    """Item 4: null-ness is part of the row hash, so no value hashes like a NULL."""

    @pytest.mark.parametrize(
        ("dtype", "value"),
        [
            ("Float64", 7.038378726374037e19),
            ("Int64", 4904004565857947459),
            ("UInt64", 4904004565857947459),
            ("Float64", 0.0),
            ("Int64", 0),
            ("boolean", False),
            ("string", ""),
        ],
    )
    def test_null_to_value_and_back_is_saved(self, repo, dtype, value):
        saving = dataset(repo)
        nulls = pd.DataFrame({"id": [1, 2], "v": pd.array([None, None], dtype=dtype)})
        saving.save(nulls)
        filled = nulls.copy()
        filled.loc[0, "v"] = value
        for wanted in (filled, nulls):
            before = commit_count(repo)
            saving.save(wanted)
            assert commit_count(repo) == before + 1
            pd.testing.assert_frame_equal(saving.load(), wanted)

    def test_text_null_and_empty_text_differ(self, repo):
        saving = dataset(repo)
        first = pd.DataFrame({"id": [1], "s": pd.Series([None], dtype=object)})
        saving.save(first)
        second = pd.DataFrame({"id": [1], "s": pd.Series([""], dtype=object)})
        saving.save(second)
        pd.testing.assert_frame_equal(saving.load(), second)


class TestBranchWithoutTheTable:
    """Item 5: a small change saved where the table is missing (another branch, a table
    dropped by someone else) is a full write, on both engines: stale-base detection is a
    typed result, not a match on Dolt's message."""

    def test_small_change_to_a_branch_that_lacks_the_table(self, repo):
        DoltTableDataset(**repo.args, table="other").save(frame([1]))
        foreign(repo, "CALL dolt_branch('dev')")
        dataset(repo).save(frame(list(range(100))))
        changed = frame(list(range(100)))
        changed.loc[3, "s"] = "changed"
        on_dev = dataset(repo, branch="dev")
        on_dev.save(changed)
        pd.testing.assert_frame_equal(on_dev.load(), changed)
        assert ids(repo, branch="main") == list(range(100))

    def test_small_change_after_someone_dropped_the_table(self, repo):
        saving = dataset(repo)
        saving.save(frame(list(range(100))))
        foreign(repo, "DROP TABLE t", "CALL dolt_commit('-am', 'dropped')")
        changed = frame(list(range(100)))
        changed.loc[3, "s"] = "changed"
        saving.save(changed)
        pd.testing.assert_frame_equal(saving.load(), changed)


class TestValidateBeforeWriting:
    """Item 6: an append or upsert that cannot be applied is refused before anything is
    written; once a commit is made, the save reports success."""

    @pytest.mark.parametrize("mode", ["append", "upsert"])
    def test_key_column_spelled_in_another_case(self, repo, mode):
        dataset(repo).save(frame([1, 2]))
        upper = frame([3]).rename(columns={"id": "ID"})
        dataset(repo, mode, key="ID").save(upper)
        assert ids(repo) == [1, 2, 3]
        loaded = dataset(repo).load()
        assert list(loaded.columns) == ["id", "x", "s"]
        # The fingerprint kept describes the table: an unchanged overwrite makes no commit.
        before = commit_count(repo)
        dataset(repo).save(loaded)
        assert commit_count(repo) == before

    @pytest.mark.parametrize("mode", ["append", "upsert"])
    def test_tz_naive_keys_into_a_tz_aware_table(self, repo, mode):
        aware = pd.DataFrame(
            {"ts": pd.date_range("2026-01-01", periods=3, freq="h", tz="UTC"), "v": [1, 2, 3]}
        )
        dataset(repo, key="ts").save(aware)
        naive = pd.DataFrame({"ts": [pd.Timestamp("2026-02-01")], "v": [9]})
        refused_cleanly(
            repo, lambda: dataset(repo, mode, key="ts").save(naive), "time zone", "Fix:"
        )


class TestInternalNames:
    """Item 7: user column names never collide with kedro-dolt's internal ones."""

    @pytest.mark.parametrize(
        "name", ["_merge", "__kedro_dolt_row_hash__", "kedro_dolt_result", "k0", "h"]
    )
    @pytest.mark.parametrize("as_key", [False, True])
    def test_delta_saves_with_internal_looking_names(self, repo, name, as_key):
        key = name if as_key else "id"
        rows = pd.DataFrame(
            {"id": np.arange(50, dtype="int64"), name: np.arange(50, dtype="int64") * 3}
        )
        saving = dataset(repo, key=key)
        saving.save(rows)
        for wanted in (rows.iloc[1:], rows.iloc[1:].assign(**{"id": rows["id"].iloc[1:] + 7})):
            wanted = wanted.reset_index(drop=True)
            saving.save(wanted)
            got = saving.load().sort_values(key).reset_index(drop=True)
            pd.testing.assert_frame_equal(got, wanted.sort_values(key).reset_index(drop=True))

    def test_table_named_like_an_internal_temporary_table(self, repo):
        saving = DoltTableDataset(
            **repo.args, table="kedro_dolt_deleted_keys", save_args={"primary_key": "id"}
        )
        saving.save(frame(list(range(50))))
        saving.save(frame(list(range(1, 50))))
        assert ids(repo, "kedro_dolt_deleted_keys") == list(range(1, 50))


class TestEarlyDates:
    """Item 8: what is saved loads back (dates before year 1000 included)."""

    def test_dates_before_year_1000_round_trip(self, repo):
        early = pd.DataFrame(
            {
                "id": [1, 2, 3, 4],
                "when": pd.Series(
                    [
                        dt.datetime(1, 1, 1),
                        dt.datetime(999, 12, 31, 23, 59, 59, 999999),
                        dt.datetime(1000, 1, 1),
                        None,
                    ],
                    dtype="datetime64[us]",
                ),
            }
        )
        saving = dataset(repo)
        saving.save(early)
        pd.testing.assert_frame_equal(saving.load(), early)
        before = commit_count(repo)
        saving.save(early)
        assert commit_count(repo) == before


class TestUncommittedEdits:
    """Item 12: a save onto a table with uncommitted edits refuses, even when the frame
    equals the committed table (it would otherwise say "unchanged" while the working set
    holds other rows)."""

    @pytest.mark.parametrize(
        ("mode", "keys"),
        [
            ("overwrite", [1, 2, 3]),  # the committed rows: the unchanged fast path
            ("overwrite", [1, 2, 3, 4]),
            ("append", [4]),
            ("upsert", [2]),  # the committed row again
            ("upsert", [4]),
        ],
    )
    def test_save_onto_uncommitted_edits_refuses(self, repo, mode, keys):
        saving = dataset(repo, mode)
        dataset(repo).save(frame([1, 2, 3]))
        foreign(repo, "UPDATE t SET s = 'mine, uncommitted' WHERE id = 2")
        refused_cleanly(repo, lambda: saving.save(frame(keys)), "uncommitted", "Fix:")
        edited = dolt_rows(repo, "SELECT s FROM t WHERE id = 2")
        assert edited == [{"s": "mine, uncommitted"}]


class TestStringStorage:
    """Item 12: a pandas string dtype loads back with the storage it was saved with."""

    @pytest.mark.parametrize(
        "dtype",
        [
            pd.StringDtype("python"),
            pd.StringDtype("pyarrow"),
            pd.StringDtype("python", na_value=np.nan),
            pd.StringDtype("pyarrow", na_value=np.nan),
        ],
    )
    def test_storage_survives(self, repo, dtype):
        data = pd.DataFrame({"id": [1, 2], "s": pd.Series(["a", None], dtype=dtype)})
        saving = dataset(repo)
        saving.save(data)
        loaded = saving.load()
        assert loaded["s"].dtype == dtype
        pd.testing.assert_frame_equal(loaded, data)
