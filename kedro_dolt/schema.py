"""Table schemas: pandas dtypes <-> Dolt column types, and the row encoding used for saves.

Tables are created with explicit DDL built from the DataFrame's dtypes (Dolt's CSV type
inference samples rows and is lossy). Each column's comment records the pandas dtype, so a load
returns exactly the dtypes that were saved; tables made outside kedro-dolt (no comment) get
dtypes from their SQL types.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DoltError
from .naming import quote_identifier, quote_string, validate_column

DTYPE_COMMENT_PREFIX = "pandas:"
#: Key columns cannot be TEXT in Dolt (no key length); non-key strings are LONGTEXT.
KEY_STRING_TYPE = "varchar(1024)"
_NULL = r"\N"

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

    def ddl(self, *, key: bool) -> str:
        null = "" if self.nullable and not key else " NOT NULL"
        comment = quote_string(DTYPE_COMMENT_PREFIX + self.dtype)
        return f"{quote_identifier(self.name)} {self.sql_type}{null} COMMENT {comment}"


@dataclass(frozen=True)
class TableSchema:
    """Columns in order plus the primary key (empty for a keyless table)."""

    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self, table: str, *, temporary: bool = False) -> str:
        keys = set(self.primary_key)
        parts = [c.ddl(key=c.name in keys) for c in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(map(quote_identifier, self.primary_key))})")
        create = "CREATE TEMPORARY TABLE" if temporary else "CREATE TABLE"
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
    def from_frame(cls, frame: pd.DataFrame, primary_key: Sequence[str] = ()) -> TableSchema:
        """Derive the Dolt schema of ``frame``; raise ``DoltError`` for what Dolt cannot store."""
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
        keys = set(primary_key)
        columns = tuple(
            _column_for(name, frame.iloc[:, i], key=name in keys) for i, name in enumerate(names)
        )
        return cls(columns, tuple(primary_key))

    @classmethod
    def from_show_columns(cls, rows: Iterable[Mapping[str, Any]]) -> TableSchema:
        """Build from ``SHOW FULL COLUMNS`` rows (Field, Type, Null, Key, Comment)."""
        columns, keys = [], []
        for row in rows:
            name, sql_type = row["Field"], str(row["Type"]).lower()
            nullable = row.get("Null") == "YES"
            comment = row.get("Comment") or ""
            if comment.startswith(DTYPE_COMMENT_PREFIX):
                dtype = comment[len(DTYPE_COMMENT_PREFIX) :]
            else:
                dtype = _dtype_for_sql(sql_type, nullable)
            columns.append(Column(name, sql_type, nullable, dtype))
            if row.get("Key") == "PRI":
                keys.append(name)
        return cls(tuple(columns), tuple(keys))


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
    """The pandas dtype for a column of a table that kedro-dolt did not create."""
    base = re.sub(r"\(.*?\)", "", sql_type).strip()
    if sql_type.startswith("tinyint(1)") or base in ("bool", "boolean", "bit"):
        return "boolean" if nullable else "bool"
    for pandas_name, sql in _INT_SQL.items():
        if base == sql:
            return pandas_name.capitalize().replace("Uint", "UInt") if nullable else pandas_name
    if base in ("float", "double", "decimal", "real"):
        return "float64"
    if base in ("datetime", "timestamp", "date"):
        return "datetime64[ns]"
    return "str" if _PANDAS_3 else "object"


# --- rows out: DataFrame -> tab-separated text for LOAD DATA ------------------------------

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"}
_ESCAPE_RE = re.compile(r"[\\\t\n\r\x00]")


#: Dolt's LOAD DATA reads a field that is exactly ``NULL`` as SQL NULL, quoted, escaped or
#: not. Text columns holding that string are sent with this prefix on every value and
#: unprefixed by the statement (see :func:`load_data_statement`).
TEXT_PREFIX = "~"


def _escape_text(values: pd.Series) -> pd.Series:
    return values.str.replace(_ESCAPE_RE, lambda m: _ESCAPES[m.group(0)], regex=True)


def _encode_column(series: pd.Series, column: Column, prefix: bool) -> pd.Series:
    """One column as LOAD DATA text (MySQL escapes, ``\\N`` for NULL); text values carry
    :data:`TEXT_PREFIX` when ``prefix`` (decided for the whole column by
    :func:`null_text_columns`)."""
    missing = series.isna().to_numpy()
    dtype = column.dtype
    if column.sql_type == "tinyint(1)":
        text = series.map({True: "1", False: "0"}, na_action="ignore")
    elif column.sql_type == "datetime(6)":
        stamps = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz else series
        text = stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    elif column.sql_type in ("double", "float"):
        # repr() of a float round-trips exactly.
        text = pd.Series(
            [repr(float(v)) for v in series.to_numpy(dtype="float64", na_value=np.nan)],
            index=series.index,
            dtype=object,
        )
    elif dtype.lower().startswith(("int", "uint")):
        text = series.astype("string") if series.hasnans else series.astype(str)
    else:
        text = _escape_text(series.astype(object).where(~missing, "").astype(str))
        if prefix:
            text = TEXT_PREFIX + text
    out = text.astype(object)
    if missing.any():
        out = out.where(~missing, _NULL)
    return out


#: Rows encoded at a time when writing a save's file: bounds the memory a save needs.
CHUNK_ROWS = 50_000


def write_rows(path: Path, frame: pd.DataFrame, schema: TableSchema) -> frozenset[str]:
    """Write ``frame`` to ``path`` as LOAD DATA input (tab-separated, backslash-escaped,
    UTF-8), a chunk at a time; return the columns written with :data:`TEXT_PREFIX`."""
    prefixed = null_text_columns(frame, schema)
    with path.open("wb") as out:
        for chunk in encode_rows(frame, schema, prefixed):
            out.write(chunk)
    return prefixed


def encode_rows(
    frame: pd.DataFrame, schema: TableSchema, prefixed: frozenset[str], size: int = CHUNK_ROWS
) -> Iterator[bytes]:
    """``frame`` as LOAD DATA input, ``size`` rows at a time (``prefixed``: the columns of
    :func:`null_text_columns`), for a writer that streams them while Dolt reads."""
    return _chunks(frame, schema, prefixed, size)


def null_text_columns(frame: pd.DataFrame, schema: TableSchema) -> frozenset[str]:
    """Text columns holding the string ``NULL``, which LOAD DATA would read as SQL NULL."""
    text = [
        c.name for c in schema.columns if c.sql_type in ("longtext", KEY_STRING_TYPE) and len(frame)
    ]
    # Compared in the column's own dtype: astype(object) would make a Python str per row.
    return frozenset(name for name in text if bool((frame[name] == "NULL").any()))


def _chunks(
    frame: pd.DataFrame, schema: TableSchema, prefixed: frozenset[str], size: int
) -> Iterator[bytes]:
    for start in range(0, len(frame), size):
        part = frame.iloc[start : start + size]
        try:  # text with lone surrogates fails here (pandas 3 strings are Arrow: UTF-8 only)
            encoded = [
                _encode_column(part.iloc[:, i], c, c.name in prefixed)
                for i, c in enumerate(schema.columns)
            ]
            lines = encoded[0]
            for col in encoded[1:]:
                lines = lines + "\t" + col
            yield ("\n".join(lines.tolist()) + "\n").encode("utf-8")
        except UnicodeEncodeError as exc:
            raise unencodable(frame, exc) from exc


def unencodable(frame: pd.DataFrame, exc: UnicodeEncodeError) -> DoltError:
    """Name the column and row holding text UTF-8 cannot encode (a lone surrogate)."""
    for name in frame.columns:
        values = frame[name]
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            for position, value in enumerate(values.tolist()):
                if isinstance(value, str):
                    try:
                        value.encode("utf-8")
                    except UnicodeEncodeError:
                        return DoltError(
                            f"Column {name!r}, row {position}: the text {value!r} is not valid "
                            f"Unicode ({exc.reason}: {value[exc.start : exc.end]!r} is a lone "
                            "surrogate) and cannot be stored.",
                            fix="clean the text, e.g. "
                            "df[col].str.encode('utf-8', 'replace').str.decode('utf-8').",
                        )
    return DoltError(f"The frame holds text that is not valid Unicode: {exc}.", fix="clean it.")


def load_data_statement(
    table: str,
    schema: TableSchema,
    path: str,
    prefixed: frozenset[str] = frozenset(),
    *,
    replace: bool = False,
) -> str:
    """The LOAD DATA statement matching :func:`write_rows`' format (``replace``: rows with
    an existing key replace it, as an upsert)."""
    targets, assignments = [], []
    for i, name in enumerate(schema.names):
        if name in prefixed:
            # Read into a variable: \\N arrives there as the text NULL, values with the prefix.
            var = f"@kedro_dolt_c{i}"
            targets.append(var)
            assignments.append(
                f"{quote_identifier(name)} = IF(LEFT({var}, 1) = {quote_string(TEXT_PREFIX)}, "
                f"SUBSTRING({var}, 2), NULL)"
            )
        else:
            targets.append(quote_identifier(name))
    tail = f" SET {', '.join(assignments)}" if assignments else ""
    return (
        f"LOAD DATA INFILE {quote_string(path)}{' REPLACE' if replace else ''} "
        f"INTO TABLE {quote_identifier(table)} "
        "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
        f"LINES TERMINATED BY '\\n' ({', '.join(targets)}){tail}"
    )


# --- rows in: Arrow table from Dolt -> DataFrame with the saved dtypes --------------------


def _arrow_to_nullable(arrow_type: pa.DataType) -> Any:
    # Keep integers exact in the presence of NULLs (no detour through float64).
    if pa.types.is_integer(arrow_type):
        return pd.api.types.pandas_dtype(
            str(arrow_type).replace("int", "Int").replace("uInt", "UInt")
        )
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _string_label(dtype: pd.StringDtype) -> str:
    """The dtype's name, with its storage when the name alone would load another one
    (``string[python]`` where ``string`` means pyarrow; ``str[python]`` likewise)."""
    label = str(dtype)
    if pd.api.types.pandas_dtype(label) == dtype:
        return label
    return f"{label}[{dtype.storage}]"


def _string_dtype(name: str) -> Any:
    if name.startswith("str[") and name.endswith("]"):  # see _string_label
        return pd.StringDtype(name[4:-1], na_value=np.nan)
    if name == "str":
        return pd.StringDtype(na_value=np.nan) if _PANDAS_3 else object
    if name.startswith("string"):
        return pd.api.types.pandas_dtype(name)
    return object


def _cast(series: pd.Series, column: Column) -> pd.Series:
    dtype = column.dtype
    if column.sql_type == "tinyint(1)" or dtype in ("bool", "boolean"):
        return series.astype("boolean").astype(dtype)
    if column.sql_type == "datetime(6)" or dtype.startswith("datetime64"):
        target = pd.api.types.pandas_dtype(dtype)
        stamps = pd.to_datetime(series)
        if getattr(target, "tz", None) is not None:
            return stamps.dt.tz_localize("UTC").dt.tz_convert(target.tz).astype(target)
        return stamps.astype(target)
    if dtype in ("object", "str") or dtype.startswith(("string", "str[")):
        if dtype == "object":
            return series.astype(object).where(series.notna(), None)
        return series.astype(_string_dtype(dtype))
    if dtype.lower().startswith("float") and series.dtype == object:
        series = pd.to_numeric(series)  # DECIMAL arrives as Python Decimals
    return series.astype(dtype)


def _text_type(sql_type: str) -> pa.DataType | None:
    """The Arrow type whose parser reads Dolt's CSV text of a ``sql_type`` value exactly;
    ``None`` for text columns (kept as they are)."""
    base = re.sub(r"\(.*?\)", "", sql_type).strip()
    if base == "float":
        return pa.float32()  # parsed as float32 directly: no double rounding
    if base in ("double", "real", "decimal"):
        return pa.float64()
    if base.split()[0] in ("tinyint", "smallint", "mediumint", "int", "bigint"):
        return pa.uint64() if base.endswith("unsigned") else pa.int64()
    if base in ("datetime", "date"):
        return pa.timestamp("us")
    return None


#: Column types whose values ``dolt sql -r csv`` writes as text that reads back exactly.
_CSV_TEXT = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")


def exact_from_text(table: pa.Table, schema: TableSchema) -> bool:
    """Whether ``table``'s columns either arrived typed or are text that
    :func:`decode_table` turns into the values exactly (otherwise read them typed)."""
    for column in schema.columns:
        if not pa.types.is_string(table.schema.field(column.name).type):
            continue
        base = re.sub(r"\(.*?\)", "", column.sql_type).strip()
        if base not in _CSV_TEXT and _text_type(column.sql_type) is None:
            return False
    return True


def _typed(table: pa.Table, schema: TableSchema) -> pa.Table:
    """Text columns (from CSV) converted to their SQL types with Arrow's exact parsers."""
    for column in schema.columns:
        index = table.schema.get_field_index(column.name)
        target = _text_type(column.sql_type)
        if target is not None and pa.types.is_string(table.schema.field(index).type):
            table = table.set_column(index, column.name, _parsed(table.column(index), target))
    return table


def _parsed(text: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    try:
        return text.cast(target)
    except pa.ArrowInvalid:
        if not pa.types.is_timestamp(target):
            raise
    # Dolt writes years before 1000 with fewer digits (`999-01-01 ...`): pad them to four.
    for digits, zeros in ((1, "000"), (2, "00"), (3, "0")):
        text = pc.replace_substring_regex(text, rf"^(\d{{{digits}}})-", rf"{zeros}\1-")
    return text.cast(target)


def decode_table(table: pa.Table, schema: TableSchema | None = None) -> pd.DataFrame:
    """Turn Dolt's Arrow output into a DataFrame with the dtypes ``schema`` records.

    With a schema, columns may also arrive as text (``dolt sql -r csv``): they are parsed as
    their SQL type first. Without a schema (ad-hoc SQL) dtypes follow Arrow's: integers
    become int64 (Int64 where NULLs occur), decimals float64 as in ``pandas.read_sql``,
    timestamps datetime64[ns].
    """
    if schema is not None:
        table = _typed(table, schema)
    frame = table.to_pandas(types_mapper=_arrow_to_nullable)
    if schema is not None:
        for column in schema.columns:
            frame[column.name] = _cast(frame[column.name], column)
        return frame
    for name in frame.columns:
        series = frame[name]
        if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) and not series.hasnans:
            if pd.api.types.is_integer_dtype(series.dtype):
                frame[name] = series.astype(str(series.dtype).lower())
        elif series.dtype == object and _all_decimal(series):
            frame[name] = pd.to_numeric(series).astype("float64")
        elif pd.api.types.is_datetime64_any_dtype(series.dtype):
            frame[name] = series.astype("datetime64[ns]")
    return frame


def _all_decimal(series: pd.Series) -> bool:
    values = series.dropna()
    return len(values) > 0 and all(isinstance(v, decimal.Decimal) for v in values)
