from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import AppendBranch, DoltTableDataset, NewBranch
from kedro_dolt.versioning.commits import parse_trailers
from tests.conftest import dolt, dolt_rows, state

#: Every test taking ``repo`` runs on the CLI and the server engine (see conftest).
BOTH_ENGINES = True

# One column per dtype the dataset promises to keep, with NULLs where the dtype allows them.
DTYPE_COLUMNS = {
    "int64": pd.Series([1, -2, 2**62], dtype="int64"),
    "float64": pd.Series([0.1, np.nan, -1e-300], dtype="float64"),
    "bool": pd.Series([True, False, True], dtype="bool"),
    "object": pd.Series(["a", None, ""], dtype=object),
    "str": pd.Series(["a", None, ""], dtype="str"),
    "datetime64[ns]": pd.Series(
        pd.to_datetime(
            ["2026-11-24 07:01:12.421123", None, "1999-12-31 23:59:59"], format="ISO8601"
        ),
    ).astype("datetime64[ns]"),
    "Int64": pd.array([1, None, -(2**62)], dtype="Int64"),
    "boolean": pd.array([True, None, False], dtype="boolean"),
    "string": pd.array(["a", None, ""], dtype="string"),
}


def commits(repo: Path) -> list[dict]:
    return dolt_rows(repo, "SELECT commit_hash, message FROM dolt_log")


class TestRoundTrip:
    @pytest.mark.parametrize("dtype", list(DTYPE_COLUMNS))
    def test_dtype_survives(self, repo, dtype):
        frame = pd.DataFrame({"id": [1, 2, 3], "value": DTYPE_COLUMNS[dtype]})
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        loaded = dataset.load()
        assert str(loaded["value"].dtype) == str(frame["value"].dtype)
        pd.testing.assert_frame_equal(loaded, frame)

    def test_empty_string_and_null_stay_apart(self, repo):
        frame = pd.DataFrame({"id": [1, 2], "text": pd.Series(["", None], dtype=object)})
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        stored = dolt_rows(
            repo,
            "SELECT text IS NULL AS is_null, COALESCE(LENGTH(text), -1) AS len FROM t ORDER BY id",
        )
        assert stored == [{"is_null": False, "len": 0}, {"is_null": True, "len": -1}]
        loaded = dataset.load()
        assert loaded["text"].tolist() == ["", None]

    def test_awkward_text_and_column_names(self, repo):
        frame = pd.DataFrame(
            {
                "id": [1, 2, 3],
                "company name": ["tab\there", "new\nline\\back", "quote ' and \" \\N"],
                "naïve café": ["日本", "é", "\\t literally"],
            }
        )
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        pd.testing.assert_frame_equal(dataset.load(), frame)

    def test_table_is_created_with_explicit_types(self, repo, companies):
        DoltTableDataset(**repo.args, table="companies", save_args={"primary_key": ["id"]}).save(
            companies
        )
        columns = dolt_rows(repo, "SHOW FULL COLUMNS FROM companies")
        assert [(c["Field"], c["Type"], c["Key"]) for c in columns] == [
            ("id", "bigint", "PRI"),
            ("name", "longtext", ""),
            ("employees", "bigint", ""),
        ]

    def test_keyless_table_keeps_rows(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="t")
        dataset.save(companies)
        loaded = dataset.load().sort_values("id", ignore_index=True)
        pd.testing.assert_frame_equal(loaded, companies)
        assert all(c["Key"] == "" for c in dolt_rows(repo, "SHOW FULL COLUMNS FROM t"))

    def test_load_columns(self, repo, companies):
        DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"}).save(companies)
        dataset = DoltTableDataset(**repo.args, table="t", load_args={"columns": ["name", "id"]})
        pd.testing.assert_frame_equal(dataset.load(), companies[["name", "id"]])

    def test_empty_frame(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(companies.iloc[0:0])
        loaded = dataset.load()
        assert loaded.empty
        assert loaded.dtypes.to_dict() == companies.dtypes.to_dict()

    def test_schema_change_replaces_table(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(companies)
        wider = companies.assign(country=["NL", "US", "US"])
        dataset.save(wider)
        pd.testing.assert_frame_equal(dataset.load(), wider)


class TestCommits:
    def test_one_commit_per_changed_save_and_none_when_unchanged(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="companies", save_args={"primary_key": "id"})
        dataset.save(companies)
        assert len(commits(repo)) == 2  # dolt init + first save
        dataset.save(companies.copy())
        assert len(commits(repo)) == 2
        dataset.save(companies.assign(employees=[11, 200, 35]))
        assert len(commits(repo)) == 3
        assert dolt(repo, "status").count("nothing to commit") == 1

    def test_message_has_summary_and_trailers(self, repo, companies):
        DoltTableDataset(**repo.args, table="companies").save(companies)
        message = commits(repo)[0]["message"]
        assert message.splitlines()[0] == "kedro: save companies"
        trailers = parse_trailers(message)
        assert trailers["table"] == "companies"
        assert "kedro_version" in trailers

    def test_custom_commit_message(self, repo, companies):
        DoltTableDataset(
            **repo.args, table="c", save_args={"commit_message": "Refresh from CRM"}
        ).save(companies)
        message = commits(repo)[0]["message"]
        assert message.startswith("Refresh from CRM\n\nKedro-Table: c")

    @pytest.mark.cli_only  # `dolt init -b`; a server database starts on its default branch
    def test_first_save_initialises_repository_on_branch(self, repo, companies):
        DoltTableDataset(**repo.args, table="c", branch="data").save(companies)
        assert state(repo).checked_out == "data"


class TestRefs:
    @pytest.fixture
    def history(self, repo, companies):
        """Two commits of table ``c``: v1 (tagged) then v2; returns (v1 frame, v1 hash)."""
        dataset = DoltTableDataset(**repo.args, table="c", save_args={"primary_key": "id"})
        dataset.save(companies)
        first = commits(repo)[0]["commit_hash"]
        dolt(repo, "tag", "v1", first)
        dataset.save(companies.assign(employees=[0, 0, 0]))
        return companies, first

    @pytest.mark.parametrize("ref", ["hash", "v1", "HEAD~1", "main~1"])
    def test_load_older_version(self, repo, history, ref):
        frame, first = history
        dataset = DoltTableDataset(**repo.args, table="c", ref=first if ref == "hash" else ref)
        pd.testing.assert_frame_equal(dataset.load(), frame)

    def test_default_ref_is_save_branch_head(self, repo, history):
        loaded = DoltTableDataset(**repo.args, table="c").load()
        assert loaded["employees"].tolist() == [0, 0, 0]

    def test_loading_a_ref_keeps_checked_out_branch(self, repo, history):
        dolt(repo, "branch", "other")
        before = state(repo)
        DoltTableDataset(**repo.args, table="c", ref="other").load()
        DoltTableDataset(**repo.args, table="c", ref="v1").load()
        assert state(repo) == before

    def test_head_is_relative_to_save_branch(self, repo, history, companies):
        dolt(repo, "branch", "dev")
        dev = DoltTableDataset(
            **repo.args, table="c", branch="dev", save_args={"primary_key": "id"}
        )
        dev.save(companies.assign(employees=[7, 7, 7]))
        previous = DoltTableDataset(**repo.args, table="c", branch="dev", ref="HEAD~1").load()
        assert previous["employees"].tolist() == [0, 0, 0]


class TestBranches:
    def test_save_to_other_branch_leaves_checked_out_branch_alone(self, repo, companies):
        main = DoltTableDataset(**repo.args, table="c", save_args={"primary_key": "id"})
        main.save(companies)
        dolt(repo, "branch", "dev")
        main_head = state(repo).heads["main"]

        dev = DoltTableDataset(
            **repo.args,
            table="c",
            branch=AppendBranch("dev"),
            save_args={"primary_key": "id"},
        )
        dev.save(companies.assign(employees=[1, 1, 1]))

        after = state(repo)
        assert after.checked_out == "main"
        assert after.heads["main"] == main_head
        assert after.heads["dev"] != main_head
        assert not after.dirty_branches and not after.working_changes
        pd.testing.assert_frame_equal(main.load(), companies)
        assert dev.load()["employees"].tolist() == [1, 1, 1]
        assert dolt_rows(repo, "SELECT employees FROM c ORDER BY id")[0]["employees"] == 10

    def test_branch_as_mapping(self, repo, companies):
        DoltTableDataset(**repo.args, table="c").save(companies)
        dolt(repo, "branch", "dev")
        dataset = DoltTableDataset(
            **repo.args, table="c", branch={"strategy": "append", "name": "dev"}
        )
        dataset.save(companies.head(1))
        assert len(dataset.load()) == 1
        assert len(DoltTableDataset(**repo.args, table="c").load()) == 3


class TestErrors:
    """Each failure raises DatasetError with the fix and Dolt's message; the repo is unchanged."""

    @pytest.fixture
    def saved(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args={"primary_key": "id"})
        dataset.save(companies)
        dolt(repo, "branch", "dev")
        return dataset

    def _fails_cleanly(self, repo, action, *patterns):
        before = state(repo)
        with pytest.raises(DatasetError) as info:
            action()
        for pattern in patterns:
            assert pattern in str(info.value)
        after = state(repo)
        assert after == before
        assert not after.dirty_branches and not after.working_changes
        return info.value

    def test_duplicate_primary_key(self, repo, saved, companies):
        bad = pd.concat([companies, companies.head(1)])
        self._fails_cleanly(
            repo, lambda: saved.save(bad), "Fix: make the save_args.primary_key", "duplicate"
        )
        pd.testing.assert_frame_equal(saved.load(), companies)

    def test_duplicate_primary_key_on_other_branch(self, repo, saved, companies):
        dev = DoltTableDataset(
            **repo.args, table="c", branch="dev", save_args={"primary_key": "id"}
        )
        bad = pd.concat([companies, companies.head(1)])
        self._fails_cleanly(repo, lambda: dev.save(bad), "primary_key", "duplicate")

    def test_null_in_key_column(self, repo, saved, companies):
        bad = companies.assign(id=pd.array([1, None, 3], dtype="Int64"))
        self._fails_cleanly(repo, lambda: saved.save(bad), "missing values", "Dolt said:")

    def test_value_dolt_cannot_store(self, repo, saved, companies):
        bad = companies.assign(ratio=[1.0, np.inf, 2.0])
        self._fails_cleanly(repo, lambda: saved.save(bad), "cannot be stored", "Dolt said:")

    def test_new_table_failure_leaves_no_table(self, repo, saved, companies):
        fresh = DoltTableDataset(**repo.args, table="fresh", save_args={"primary_key": "id"})
        unstorable = companies.assign(ratio=[1.0, np.inf, 2.0])
        self._fails_cleanly(repo, lambda: fresh.save(unstorable), "Dolt said:")
        assert not fresh.exists()

    def test_unsupported_column_type(self, repo, saved, companies):
        bad = companies.assign(blob=[{"a": 1}, {"b": 2}, {}])
        self._fails_cleanly(repo, lambda: saved.save(bad), "Column 'blob'", "Fix: convert")

    def test_unknown_ref(self, repo, saved):
        dataset = DoltTableDataset(**repo.args, table="c", ref="no-such-branch")
        self._fails_cleanly(repo, dataset.load, "ref 'no-such-branch'", "Fix:", "Dolt said:")

    def test_missing_table(self, repo, saved):
        dataset = DoltTableDataset(**repo.args, table="nope")
        self._fails_cleanly(
            repo, dataset.load, "table 'nope'", "check the table name", "Dolt said:"
        )

    def test_missing_branch_on_save(self, repo, saved, companies):
        dataset = DoltTableDataset(**repo.args, table="c", branch="missing")
        self._fails_cleanly(repo, lambda: dataset.save(companies), "branch", "Dolt said:")

    def test_missing_repository_on_load(self, tmp_path):
        dataset = DoltTableDataset(database=str(tmp_path / "none"), table="c")
        with pytest.raises(DatasetError, match="No Dolt repository"):
            dataset.load()
        assert not (tmp_path / "none").exists()

    @pytest.mark.cli_only  # the server engine needs no dolt binary
    def test_dolt_missing_from_path(self, repo, saved, companies, monkeypatch):
        monkeypatch.setenv("PATH", str(repo / "empty-bin"))
        dataset = DoltTableDataset(**repo.args, table="c")
        with pytest.raises(DatasetError, match=r"dolt.*not found.*\n.*install Dolt.*dolthub"):
            dataset.save(companies)
        with pytest.raises(DatasetError, match="KEDRO_DOLT_BINARY"):
            dataset.load()
        monkeypatch.undo()
        pd.testing.assert_frame_equal(saved.load(), companies)

    def test_not_a_dataframe(self, repo):
        with pytest.raises(DatasetError, match="saves pandas DataFrames"):
            DoltTableDataset(**repo.args, table="c").save([1, 2])
        assert not repo.exists()

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"table": "a`b"}, "Invalid table"),
            ({"table": "dolt_log"}, "system tables"),
            ({"table": "c", "branch": "main; rm -rf /"}, "Invalid branch"),
            ({"table": "c", "branch": "--force"}, "Invalid branch"),
            ({"table": "c", "ref": "main' OR '1'='1"}, "Invalid ref"),
            ({"table": "c", "branch": {"strategy": "sideways"}}, "Unknown branch strategy"),
            ({"table": "c", "save_args": {"primary_keys": "id"}}, "Unknown save_args"),
            ({"table": "c", "load_args": {"limit": 3}}, "Unknown load_args"),
        ],
    )
    def test_bad_configuration(self, repo, kwargs, message):
        with pytest.raises(DatasetError, match=message):
            DoltTableDataset(**repo.args, **kwargs)
        assert not repo.exists()

    def test_primary_key_not_in_frame(self, repo, saved, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args={"primary_key": "uid"})
        self._fails_cleanly(
            repo, lambda: dataset.save(companies), "primary_key names column(s) ['uid']"
        )


class TestDatasetContract:
    def test_constructor_does_not_touch_dolt(self, repo, monkeypatch):
        monkeypatch.setenv("PATH", "/nonexistent")
        dataset = DoltTableDataset(**repo.args, table="c", ref="main~3")
        assert not repo.exists()
        assert "c" in str(dataset)

    def test_pickles(self, repo, companies):
        dataset = DoltTableDataset(
            **repo.args, table="c", branch="main", save_args={"primary_key": "id"}
        )
        dataset.save(companies)
        clone = pickle.loads(pickle.dumps(dataset))
        pd.testing.assert_frame_equal(clone.load(), companies)

    def test_exists(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c")
        assert not dataset.exists()
        dataset.save(companies)
        assert dataset.exists()
        assert not DoltTableDataset(**repo.args, table="other").exists()
        assert not DoltTableDataset(**repo.args, table="c", ref="nope").exists()

    def test_describe(self, repo):
        dataset = DoltTableDataset(
            **repo.args, table="c", branch="dev", save_args={"primary_key": "id"}
        )
        described = dataset._describe()
        assert described["database"] == repo.location
        assert described["table"] == "c"
        assert described["ref"] is None  # the strategy decides: branch dev
        assert described["branch"] == {"strategy": "append", "name": "dev"}
        assert described["save_args"]["primary_key"] == "id"
        # kedro-viz shows "filepath" as the location: database, table, then branch or ref.
        assert described["filepath"] == f"{repo.location}:c@dev"
        new = DoltTableDataset(database="data/wh", table="t", branch=NewBranch("exp"), ref="v1")
        assert new._describe()["filepath"] == "data/wh:t@v1"
        assert DoltTableDataset(database="data/wh", table="t")._describe()["filepath"] == (
            "data/wh:t@HEAD"
        )

    def test_relative_database_resolves_against_cwd(self, tmp_path, monkeypatch, companies):
        monkeypatch.chdir(tmp_path)
        dataset = DoltTableDataset(database="data/wh", table="c")
        dataset.save(companies)
        assert (tmp_path / "data" / "wh" / ".dolt").is_dir()

    def test_preview(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args={"primary_key": "id"})
        dataset.save(companies)
        preview = dataset.preview(nrows=2)
        assert preview["columns"] == ["id", "name", "employees"]
        assert preview["data"] == [[1, "Acme", 10], [2, "Globex", 200]]
