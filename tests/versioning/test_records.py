"""Action records and CallbackMeta: callbacks and the in-repository lineage table."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset
from kedro_dolt.versioning.records import ActionRecord, CallbackMeta
from tests.conftest import dolt, dolt_rows, state

#: Every test taking ``repo`` runs on the CLI and the server engine (see conftest).
BOTH_ENGINES = True

KEY = {"primary_key": "id"}
received: list[ActionRecord] = []


def remember(record: ActionRecord) -> None:
    received.append(record)


@pytest.fixture(autouse=True)
def _clear_received():
    received.clear()


class TestCallbackMeta:
    @pytest.mark.parametrize(
        ("config", "expected"),
        [
            (
                "tests.versioning.test_records.remember",
                CallbackMeta(fn="tests.versioning.test_records.remember"),
            ),
            (
                {"callback": "tests.versioning.test_records:remember"},
                CallbackMeta(fn="tests.versioning.test_records:remember"),
            ),
            ({"table": "kedro_runs"}, CallbackMeta(table="kedro_runs")),
        ],
    )
    def test_yaml_forms(self, config, expected):
        assert CallbackMeta.from_config(config) == expected

    @pytest.mark.parametrize(
        "path", ["tests.versioning.test_records:remember", "tests.versioning.test_records.remember"]
    )
    def test_callback_by_path_and_object_receive_each_record(self, repo, companies, path):
        for meta in (CallbackMeta(fn=path), CallbackMeta(fn=remember)):
            received.clear()
            dataset = DoltTableDataset(**repo.args, table="c", meta=meta, save_args=KEY)
            dataset.save(companies.assign(employees=len(str(meta))))
            dataset.load()
            assert [r.kind for r in received] == ["save", "load"]
            save, load = received
            assert save.to_commit == load.to_commit == state(repo).heads["main"]
            assert save.rows == load.rows == 3
            assert json.loads(json.dumps(save.to_dict()))["table"] == "c"

    def test_record_fields_of_a_save(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", meta=remember, save_args=KEY)
        dataset.save(companies)
        dataset.save(companies.assign(employees=[10, 201, 35]).head(2))
        second = received[-1]
        assert (second.kind, second.table, second.branch, second.strategy) == (
            "save",
            "c",
            "main",
            "append",
        )
        assert (second.rows_added, second.rows_modified, second.rows_deleted) == (0, 1, 1)
        assert second.committed and second.from_commit != second.to_commit
        assert second.pushed is False and second.merge is None

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ({"callbacks": "x:y"}, r"Unknown key\(s\) \['callbacks'\] in meta"),
            ({"table": "dolt_log"}, "Invalid meta table"),
            (42, "Invalid meta 42"),
        ],
    )
    def test_bad_configuration(self, repo, config, message):
        with pytest.raises(DatasetError, match=message):
            DoltTableDataset(**repo.args, table="c", meta=config)

    def test_unimportable_callback_fails_before_writing(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", meta="no_such_module:fn")
        with pytest.raises(
            DatasetError, match="Cannot import the meta callback 'no_such_module:fn'"
        ):
            dataset.save(companies)
        assert not repo.exists()


class TestLineageTable:
    def test_row_in_the_same_commit_and_none_when_unchanged(self, repo, companies):
        dataset = DoltTableDataset(
            **repo.args, table="c", meta={"table": "kedro_runs"}, save_args=KEY
        )
        dataset.save(companies)
        head = state(repo).heads["main"]
        rows = dolt_rows(repo, "SELECT table_name, rows_written, branch FROM kedro_runs")
        assert rows == [{"table_name": "c", "rows_written": 3, "branch": None}] or rows == [
            {"table_name": "c", "rows_written": 3}
        ]
        # The lineage row was committed together with the data.
        changed = dolt_rows(repo, f"SELECT table_name FROM dolt_diff WHERE commit_hash = '{head}'")
        assert sorted(r["table_name"] for r in changed) == ["c", "kedro_runs"]
        dataset.save(companies)  # unchanged: no new row, no commit
        assert state(repo).heads["main"] == head
        assert dolt_rows(repo, "SELECT COUNT(*) AS n FROM kedro_runs")[0]["n"] == 1

    def test_from_commit_is_the_head_the_save_started_from(self, repo, companies):
        dataset = DoltTableDataset(
            **repo.args, table="c", meta={"table": "kedro_runs"}, save_args=KEY
        )
        dataset.save(companies)
        before = state(repo).heads["main"]
        dataset.save(companies.head(2))
        rows = dolt_rows(repo, "SELECT from_commit FROM kedro_runs ORDER BY saved_at")
        assert len(rows) == 2 and all(r.get("from_commit") for r in rows)
        assert rows[-1]["from_commit"] == before

    def test_lineage_travels_with_push_and_clone(self, tmp_path, companies):
        store = tmp_path / "store"
        store.mkdir()
        dataset = DoltTableDataset(
            database=str(tmp_path / "local"),
            table="c",
            meta={"table": "kedro_runs"},
            remote={"url": f"file://{store}"},
            save_args=KEY,
        )
        dataset.save(companies)
        dataset.save(companies.head(1))
        dolt(tmp_path, "clone", f"file://{store}", "fresh")
        # From each lineage row back to the commit that added it, in the fresh clone.
        added = dolt_rows(
            tmp_path / "fresh",
            "SELECT to_table_name, to_rows_written, to_commit FROM dolt_diff_kedro_runs "
            "WHERE diff_type = 'added' ORDER BY to_saved_at",
        )
        assert [(r["to_table_name"], r["to_rows_written"]) for r in added] == [("c", 3), ("c", 1)]
        assert added[-1]["to_commit"] == state(tmp_path / "fresh").heads["main"]
        loaded = DoltTableDataset(database=str(tmp_path / "fresh"), table="c").load()
        pd.testing.assert_frame_equal(loaded, companies.head(1))
