"""Table schemas: pandas dtypes <-> Dolt column types (the rows themselves: :mod:`.codec`).

Tables are created with explicit DDL built from the DataFrame's dtypes (Dolt's CSV type
inference samples rows and is lossy). Each column's comment records the pandas dtype, so a load
returns exactly the dtypes that were saved; tables made outside kedro-dolt (no comment) get
dtypes from their SQL types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ..errors import DoltError
from ..naming import quote_identifier, quote_string, validate_column
from .column_types import dtype_for

DTYPE_COMMENT_PREFIX = "pandas:"
#: Column comments of columns that hold a frame's index or row order, not its data: the
#: comment's role part (``pandas-index:int64``, ...); see :class:`Column`.
ROLES = ("index", "index-unnamed", "order")
#: Key columns cannot be TEXT in Dolt (no key length); non-key strings are LONGTEXT.
KEY_STRING_TYPE = "varchar(1024)"

_INT_SQL = {
    "int8": "tinyint",
    "int16": "smallint",
    "int32": "int",
    "int64": "bigint",
    "uint8": "tinyint unsigned",
    "uint16": "smallint unsigned",
    "uint32": "int unsigned",
    "uint64": "bigint unsigned",
}
_PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


@dataclass(frozen=True)
class Column:
    """One column: its name, Dolt type, nullability and the pandas dtype it loads as."""

    name: str
    sql_type: str
    nullable: bool
    dtype: str
    #: ``""`` for data; ``index`` / ``index-unnamed``: a level of the frame's index (named
    #: as the column, or unnamed); ``order``: the frame's row order (see the datasets' layout).
    role: str = ""

    @property
    def comment(self) -> str:
        """``pandas:<dtype>``, or ``pandas-<role>:<dtype>``: what a load restores."""
        prefix = f"pandas-{self.role}:" if self.role else DTYPE_COMMENT_PREFIX
        return prefix + self.dtype

    def ddl(self, *, key: bool) -> str:
        null = "" if self.nullable and not key else " NOT NULL"
        comment = quote_string(self.comment)
        return f"{quote_identifier(self.name)} {self.sql_type}{null} COMMENT {comment}"


@dataclass(frozen=True)
class TableSchema:
    """Columns in order plus the primary key (empty for a keyless table)."""

    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, table: str, *, temporary: bool = False, if_not_exists: bool = False) -> str:
        keys = set(self.primary_key)
        parts = [c.ddl(key=c.name in keys) for c in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(map(quote_identifier, self.primary_key))})")
        create = "CREATE TEMPORARY TABLE" if temporary else "CREATE TABLE"
        create += " IF NOT EXISTS" if if_not_exists else ""
        return f"{create} {quote_identifier(table)} (\n  " + ",\n  ".join(parts) + "\n)"

    def key_schema(self) -> TableSchema:
        """Just the primary key columns (the rows a delta deletes are named by these)."""
        keys = set(self.primary_key)
        return TableSchema(tuple(c for c in self.columns if c.name in keys), self.primary_key)

    def same_table(self, other: TableSchema) -> bool:
        """Same column names and SQL types, same key (names ignore case, as Dolt does).

        pandas dtypes are not compared: ``object`` and ``str`` text land in the same column,
        and the table keeps the dtypes it records."""

        def shape(schema: TableSchema) -> tuple[object, ...]:
            return (
                tuple((c.name.lower(), c.sql_type) for c in schema.columns),
                tuple(k.lower() for k in schema.primary_key),
            )

        return shape(self) == shape(other)

    def select(self, names: Sequence[str] | None) -> TableSchema:
        """The schema restricted to ``names`` (in that order); unknown names raise."""
        if names is None:
            return self
        by_name = {c.name: c for c in self.columns}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise DoltError(
                f"Unknown column(s) {missing} in load_args.columns.",
                fix=f"choose from the table's columns: {self.names}.",
            )
        return TableSchema(tuple(by_name[n] for n in names), self.primary_key)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        primary_key: Sequence[str] = (),
        roles: Mapping[str, str] | None = None,
    ) -> TableSchema:
        """Derive the Dolt schema of ``frame``; raise ``DoltError`` for what Dolt cannot store.
        ``roles``: columns that hold the frame's index or order (see :class:`Column`)."""
        if len(frame.columns) == 0:
            raise DoltError(
                "The DataFrame has no columns; a Dolt table needs at least one.",
                fix="save a DataFrame with at least one column.",
            )
        names = [validate_column(n) for n in frame.columns]
        folded = [n.lower() for n in names]
        if len(set(folded)) != len(folded):
            dupes = sorted({n for n in names if folded.count(n.lower()) > 1})
            raise DoltError(
                f"Duplicate column names {dupes}: Dolt column names are case-insensitive "
                "and must be unique.",
                fix="rename or drop the duplicated columns before saving.",
            )
        missing = [k for k in primary_key if k not in names]
        if missing:
            raise DoltError(
                f"save_args.primary_key names column(s) {missing} that the DataFrame lacks.",
                fix=f"use columns of the DataFrame: {names}.",
            )
        keys, roles = set(primary_key), roles or {}
        columns = tuple(
            replace(_column_for(name, frame.iloc[:, i], key=name in keys), role=roles.get(name, ""))
            for i, name in enumerate(names)
        )
        return cls(columns, tuple(primary_key))

    @classmethod
    def from_show_columns(cls, rows: Iterable[Mapping[str, Any]]) -> TableSchema:
        """Build from ``SHOW FULL COLUMNS`` rows (Field, Type, Null, Key, Comment)."""
        columns, keys = [], []
        for row in rows:
            name, sql_type = row["Field"], str(row["Type"]).lower()
            nullable = row.get("Null") == "YES"
            role, dtype = _parse_comment(row.get("Comment") or "")
            dtype = dtype or _dtype_for_sql(sql_type, nullable)
            columns.append(Column(name, sql_type, nullable, dtype, role))
            if row.get("Key") == "PRI":
                keys.append(name)
        return cls(tuple(columns), tuple(keys))


def _parse_comment(comment: str) -> tuple[str, str | None]:
    """``(role, dtype)`` of a column comment kedro-dolt wrote; ``("", None)`` for others."""
    if comment.startswith(DTYPE_COMMENT_PREFIX):
        return "", comment[len(DTYPE_COMMENT_PREFIX) :]
    head, colon, dtype = comment.partition(":")
    role = head.removeprefix("pandas-")
    if colon and head.startswith("pandas-") and role in ROLES:
        return role, dtype
    return "", None


def _unsupported(name: str, what: str) -> DoltError:
    return DoltError(
        f"Column {name!r} has {what}, which kedro-dolt cannot store in a Dolt table.",
        fix="convert it before saving: numbers to int64/float64, text to str/string, "
        "times to datetime64[ns] (e.g. df[col] = df[col].astype(str)).",
    )


def _column_for(name: str, series: pd.Series, *, key: bool) -> Column:
    dtype = series.dtype
    label = str(dtype)
    is_ext = isinstance(dtype, pd.api.extensions.ExtensionDtype)
    if isinstance(dtype, pd.CategoricalDtype):
        raise _unsupported(name, "dtype category")
    if isinstance(dtype, pd.SparseDtype):
        raise DoltError(
            f"Column {name!r} is sparse ({label}), which kedro-dolt does not store.",
            fix=f"densify it before saving: df[{name!r}] = df[{name!r}].sparse.to_dense().",
        )
    if pd.api.types.is_bool_dtype(dtype):
        return Column(name, "tinyint(1)", is_ext, label)
    if pd.api.types.is_integer_dtype(dtype):
        if label.lower() not in _INT_SQL:
            raise _unsupported(name, f"dtype {label}")
        return Column(name, _INT_SQL[label.lower()], is_ext, label)
    if pd.api.types.is_float_dtype(dtype):
        return Column(name, "float" if label.lower() == "float32" else "double", True, label)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        # Dolt keeps microseconds; nanoseconds are truncated (documented limit).
        return Column(name, "datetime(6)", True, label)
    if isinstance(dtype, pd.StringDtype):
        return Column(name, KEY_STRING_TYPE if key else "longtext", True, _string_label(dtype))
    if pd.api.types.is_object_dtype(dtype):
        kind = pd.api.types.infer_dtype(series, skipna=True)
        if kind in ("string", "empty"):
            return Column(name, KEY_STRING_TYPE if key else "longtext", True, label)
        raise _unsupported(name, f"dtype object holding {kind} values")
    raise _unsupported(name, f"dtype {label}")


def _dtype_for_sql(sql_type: str, nullable: bool) -> str:
    """The pandas dtype for a column of a table that kedro-dolt did not create (the type map
    of :mod:`.column_types`)."""
    return dtype_for(sql_type, nullable)


def _string_label(dtype: pd.StringDtype) -> str:
    """The dtype's name, with its storage when the name alone would load another one
    (``string[python]`` where ``string`` means pyarrow; ``str[python]`` likewise)."""
    label = str(dtype)
    if pd.api.types.pandas_dtype(label) == dtype:
        return label
    return f"{label}[{dtype.storage}]"
