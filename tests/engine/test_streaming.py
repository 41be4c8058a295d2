"""The CLI transport's fast paths: rows streamed into LOAD DATA through a named pipe, rows read
back as CSV, and the commit identity read from Dolt's config files. Correctness, not speed."""

from __future__ import annotations

import decimal
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset
from kedro_dolt.engine import DoltCLIEngine, codec, output
from kedro_dolt.engine import process as process_module
from kedro_dolt.engine.output import csv_results
from kedro_dolt.engine.process import DoltProcess
from kedro_dolt.engine.schema import TableSchema
from kedro_dolt.engine.transport import Load
from kedro_dolt.errors import DoltCommandError
from tests.conftest import dolt, dolt_rows


def frame(rows: int, offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "v": np.arange(rows, dtype="float64") + offset,
            "s": pd.Series([f"r{i}\tx" for i in range(rows)], dtype="str"),
        }
    )


def heads(repo: Path) -> dict[str, str]:
    return {r["name"]: r["hash"] for r in dolt_rows(repo, "SELECT name, hash FROM dolt_branches")}


def own_temp_dirs() -> list[str]:
    prefix = f"kedro-dolt-{os.getpid()}-"
    return [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(prefix)]


def failing_after(chunks: int):
    """An ``encode_tsv`` that yields ``chunks`` real chunks, then fails mid-stream."""
    real = codec.encode_tsv

    def encode(frame, schema, prefixed, size=codec.CHUNK_ROWS):
        for n, chunk in enumerate(real(frame, schema, prefixed, size=10)):
            if n == chunks:
                raise RuntimeError("the writer broke")
            yield chunk

    return encode


class TestStreamedSave:
    def test_many_chunks_round_trip(self, repo, monkeypatch):
        monkeypatch.setattr(codec, "CHUNK_ROWS", 7)
        data = frame(500)
        dataset = DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"})
        dataset.save(data)
        pd.testing.assert_frame_equal(dataset.load(), data)
        assert own_temp_dirs() == []

    @pytest.mark.parametrize("existing", [False, True], ids=["new-table", "over-a-table"])
    def test_failed_writer_changes_nothing_and_leaves_no_pipe(self, repo, monkeypatch, existing):
        dataset = DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"})
        if existing:
            dataset.save(frame(5))
        else:  # a table never saved: its rows are hashed while they stream
            DoltTableDataset(database=str(repo), table="other").save(frame(5))
        before, rows = heads(repo), dolt_rows(repo, "SHOW TABLES")
        monkeypatch.setattr(process_module, "encode_tsv", failing_after(3))
        with pytest.raises(DatasetError, match=r"nothing was changed[\s\S]*the writer broke"):
            # Every row differs, so even over the table this is a full write.
            dataset.save(frame(200, offset=0.5))
        assert heads(repo) == before  # no commit, and the scratch branch is gone
        assert dolt_rows(repo, "SHOW TABLES") == rows
        assert dolt_rows(repo, "SELECT COUNT(*) AS n FROM dolt_status") == [{"n": 0}]
        assert own_temp_dirs() == []
        monkeypatch.undo()
        dataset.save(frame(200, offset=0.5))  # and the next save lands whole
        pd.testing.assert_frame_equal(dataset.load(), frame(200, offset=0.5))

    def test_a_new_tables_diff_stat_is_its_row_count(self, repo):
        DoltTableDataset(database=str(repo), table="other").save(frame(3))
        data = frame(40)
        engine = DoltCLIEngine(repo)
        schema = TableSchema.from_frame(data, ["id"])
        result = engine.write_table("t", data, schema=schema, branch=None, message="m")
        stat = dolt_rows(
            repo, f"SELECT * FROM dolt_diff_stat('{result.from_commit}', '{result.to_commit}', 't')"
        )[0]
        assert (result.stats.added, result.stats.modified, result.stats.deleted) == (40, 0, 0)
        assert stat["rows_added"] == 40

    def test_failing_statement_before_the_load_does_not_hang(self, repo):
        DoltTableDataset(database=str(repo), table="t").save(frame(3))
        data = frame(50)
        schema = TableSchema.from_frame(data, ["id"])
        process = DoltProcess(repo)
        with pytest.raises(DoltCommandError, match=r"(?i)function"):
            process.run(["SELECT no_such_function();", Load("t", schema, data)])
        assert own_temp_dirs() == []

    def test_surrogate_in_a_new_table_names_column_and_row(self, repo):
        DoltTableDataset(database=str(repo), table="other").save(frame(3))
        before = heads(repo)
        bad = pd.DataFrame({"id": [1, 2], "v": pd.Series(["fine", "bad\ud800"], dtype=object)})
        with pytest.raises(DatasetError, match=r"nothing was changed[\s\S]*Column 'v', row 1"):
            DoltTableDataset(database=str(repo), table="t").save(bad)
        assert heads(repo) == before
        assert own_temp_dirs() == []


class TestCSVRead:
    def test_every_kept_dtype_and_edge_value_round_trips(self, repo):
        times = [
            "2026-01-01 00:00:00.123456",
            None,
            "1970-01-01",
            "1999-12-31 23:59:59",
            "1700-01-01",
        ]
        data = pd.DataFrame(
            {
                "id": np.arange(5, dtype="int64"),
                "f32": np.array([0.1, 3.4e38, -0.0, 1.17549435e-38, np.nan], dtype="float32"),
                "f64": [0.1, 1e300, -0.0, 5e-324, np.nan],
                "u64": np.array([0, 2**64 - 1, 5, 6, 7], dtype="uint64"),
                "i8": np.array([-128, 127, 0, 1, 2], dtype="int8"),
                "u8": pd.array([1, None, 255, 0, 3], dtype="UInt8"),
                "s": pd.Series(["", None, "NULL", ' a,"b"\r\nc\td ', "x\\y\\N"], dtype="str"),
                "o": pd.Series(["", None, "null", "\n", "kedro_dolt_result"], dtype=object),
                "t": pd.Series(["ü", "", None, '"', "\r"], dtype="string"),
                "tz": pd.to_datetime(times, format="ISO8601").tz_localize("Europe/Paris"),
                "dt": pd.to_datetime(times, format="ISO8601").astype("datetime64[ns]"),
                "b": pd.array([True, None, False, True, False], dtype="boolean"),
            }
        )
        dataset = DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"})
        dataset.save(data)
        loaded = dataset.load()
        pd.testing.assert_frame_equal(loaded, data)
        assert np.signbit(loaded["f64"][2]) and np.signbit(loaded["f32"][2])

    def test_types_without_exact_text_are_read_typed(self, repo):
        DoltTableDataset(database=str(repo), table="x").save(frame(1))
        dolt(
            repo,
            "sql",
            "-q",
            "CREATE TABLE e (id INT PRIMARY KEY, d DECIMAL(10,3), j JSON, tm TIME, bl BLOB, "
            "dd DATE, c CHAR(3)); INSERT INTO e VALUES (1, 1.105, '{\"a\": 1}', '12:00:01', "
            "'xy', '2026-02-03', 'ab'), (2, NULL, NULL, NULL, NULL, NULL, '');"
            "CALL dolt_commit('-Am', 'e');",
        )
        engine = DoltCLIEngine(repo)
        read = engine.read_table("e", ref="main")
        typed = engine.transport.run_arrow(["SELECT * FROM e;"])[0]
        expected = codec.decode_table(typed, read.schema)
        pd.testing.assert_frame_equal(read.frame, expected)
        assert read.frame["d"].tolist()[0] == decimal.Decimal("1.105")  # exact (issue 25)

    def test_small_reads_and_values_longer_than_a_block(self, repo, monkeypatch):
        monkeypatch.setattr(output, "READ_SIZE", 7)
        monkeypatch.setattr(output, "BLOCK_SIZE", 1 << 10)
        data = frame(300)
        data.loc[150, "s"] = "long\n" * 2000  # 10 KB: spans several blocks
        dataset = DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"})
        dataset.save(data)
        pd.testing.assert_frame_equal(dataset.load(), data)
        read = DoltCLIEngine(repo).read_table("t", ref="main", limit=0)
        assert len(read.frame) == 0 and list(read.frame.columns) == ["id", "v", "s"]

    def test_result_sets_split_at_the_marker_only(self):
        token = "abc123"
        mark = f"kedro_dolt_result\n{token}\n"
        data = (
            f'h,b\nx1,main\n{mark}name\n{mark}a,b\n"kedro_dolt_result\n{token}\n",\n"",\n,"y"\n'
        ).encode()
        head, empty, rows = csv_results(data, token)
        assert head.to_pylist() == [{"h": "x1", "b": "main"}]
        assert empty.num_rows == 0 and empty.column_names == ["name"]
        assert rows.to_pylist() == [
            {"a": f"kedro_dolt_result\n{token}\n", "b": None},
            {"a": "", "b": None},
            {"a": None, "b": "y"},
        ]


class TestIdentity:
    def test_config_files_agree_with_dolt(self, repo):
        DoltTableDataset(database=str(repo), table="t").save(frame(1))
        dolt(repo, "config", "--local", "--add", "user.name", "Local Name")
        process = DoltProcess(repo)
        assert process._config_files()["user.name"] == "Local Name"
        assert process._config_files() == process._config_listed()

    def test_an_unreadable_config_file_falls_back_to_dolt(self, repo, monkeypatch):
        DoltTableDataset(database=str(repo), table="t").save(frame(1))
        (repo / ".dolt" / "config.json").write_text(json.dumps({"user.name": ["odd"]}))
        process = DoltProcess(repo)
        assert process._config_files() == {}
        monkeypatch.setattr(DoltProcess, "_authors", {})
        assert process.author() == "Kedro Dolt Tests <tests@kedro-dolt.invalid>"
