from __future__ import annotations

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt.engine.schema import TableSchema


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
