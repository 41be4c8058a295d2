from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt.schema import TableSchema, write_rows


class TestFromFrame:
    @pytest.mark.parametrize(
        ("values", "sql_type", "nullable"),
        [
            (pd.Series([1], dtype="int64"), "bigint", False),
            (pd.Series([1], dtype="int32"), "int", False),
            (pd.Series([1], dtype="uint8"), "tinyint unsigned", False),
            (pd.array([1, None], dtype="Int64"), "bigint", True),
            (pd.Series([0.5], dtype="float64"), "double", True),
            (pd.Series([0.5], dtype="float32"), "float", True),
            (pd.Series([True], dtype="bool"), "tinyint(1)", False),
            (pd.array([True, None], dtype="boolean"), "tinyint(1)", True),
            (pd.Series(["a"], dtype=object), "longtext", True),
            (pd.Series(["a"], dtype="string"), "longtext", True),
            (pd.Series(pd.to_datetime(["2026-01-01"])), "datetime(6)", True),
        ],
    )
    def test_column_types(self, values, sql_type, nullable):
        column = TableSchema.from_frame(pd.DataFrame({"v": values})).columns[0]
        assert (column.sql_type, column.nullable, column.dtype) == (
            sql_type,
            nullable,
            str(pd.Series(values).dtype),
        )

    def test_string_key_is_varchar(self):
        schema = TableSchema.from_frame(pd.DataFrame({"k": ["a"]}), ["k"])
        assert schema.columns[0].sql_type.startswith("varchar(")
        assert "PRIMARY KEY (`k`)" in schema.ddl("t")

    def test_ddl_quotes_names_and_records_dtype(self):
        ddl = TableSchema.from_frame(pd.DataFrame({"a`b c": pd.array([1], dtype="Int64")})).ddl(
            "my t"
        )
        assert ddl.startswith("CREATE TABLE `my t` (")
        assert "`a``b c` bigint COMMENT 'pandas:Int64'" in ddl

    @pytest.mark.parametrize(
        "values",
        [
            pd.Series([1 + 2j]),
            pd.Series(["a"], dtype="category"),
            pd.Series([pd.Timedelta(1)]),
            pd.Series([{"a": 1}]),
            pd.Series([1, "a"], dtype=object),
        ],
    )
    def test_unsupported_dtypes(self, values):
        with pytest.raises(DatasetError, match="Column 'v' has"):
            TableSchema.from_frame(pd.DataFrame({"v": values}))

    def test_case_insensitive_duplicates(self):
        with pytest.raises(DatasetError, match="case-insensitive"):
            TableSchema.from_frame(pd.DataFrame({"A": [1], "a": [2]}))

    def test_non_string_column_name(self):
        with pytest.raises(DatasetError, match="must be strings"):
            TableSchema.from_frame(pd.DataFrame({0: [1]}))


def encoded(frame: pd.DataFrame, tmp_path: Path) -> bytes:
    path = tmp_path / "rows.tsv"
    write_rows(path, frame, TableSchema.from_frame(frame))
    return path.read_bytes()


class TestEncodeRows:
    def test_mysql_escapes_and_null_marker(self, tmp_path):
        frame = pd.DataFrame(
            {
                "s": pd.Series(["t\tn\nr\rb\\", None, ""], dtype=object),
                "i": pd.array([1, None, 3], dtype="Int64"),
                "f": [0.1, np.nan, 1e300],
                "b": [True, False, True],
            }
        )
        text = encoded(frame, tmp_path).decode()
        assert text.splitlines() == [
            "t\\tn\\nr\\rb\\\\\t1\t0.1\t1",
            "\\N\t\\N\t\\N\t0",
            "\t3\t1e+300\t1",
        ]

    def test_tz_aware_times_are_stored_in_utc(self, tmp_path):
        frame = pd.DataFrame(
            {"t": pd.to_datetime(["2026-01-01 12:00"]).tz_localize("Europe/Amsterdam")}
        )
        assert encoded(frame, tmp_path) == b"2026-01-01 11:00:00.000000\n"
