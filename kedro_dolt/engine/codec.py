"""The row codec: a DataFrame's rows to Dolt (tab-separated text for ``LOAD DATA``, values for
``INSERT``) and Dolt's results back to a DataFrame with the dtypes the schema records.

Both directions go through one text form per SQL type (:func:`_stored_text`), which Dolt parses
into exactly the value the frame holds, and which ``dolt sql -r csv`` prints back.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import DoltError
from . import column_types
from .schema import _PANDAS_3, KEY_STRING_TYPE, Column, TableSchema

_NULL = r"\N"
#: The SQL types kedro-dolt gives text columns.
TEXT_TYPES = ("longtext", KEY_STRING_TYPE)

# --- rows out: DataFrame -> text for LOAD DATA, values for INSERT ----------------------------

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"}
_ESCAPE_RE = re.compile(r"[\\\t\n\r\x00]")


#: Dolt's LOAD DATA reads a field that is exactly ``NULL`` as SQL NULL, quoted, escaped or
#: not. Text columns holding that string are sent with this prefix on every value and
#: unprefixed by the statement (see :func:`kedro_dolt.engine.sql.saves.load_data`).
TEXT_PREFIX = "~"


def _escape_text(values: pd.Series) -> pd.Series:
    return values.str.replace(_ESCAPE_RE, lambda m: _ESCAPES[m.group(0)], regex=True)


def _stored_text(series: pd.Series, column: Column) -> tuple[pd.Series, np.ndarray]:
    """``(text, missing)``: each value as the text Dolt parses into exactly that value (text
    columns as they are, unescaped); ``missing`` marks NULLs (their text is undefined)."""
    missing = series.isna().to_numpy()
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
    elif column.dtype.lower().startswith(("int", "uint")):
        text = series.astype("string") if series.hasnans else series.astype(str)
    else:
        text = series.astype(object).where(~missing, "").astype(str)
    return text.astype(object), missing


def _tsv_column(series: pd.Series, column: Column, prefix: bool) -> pd.Series:
    """One column as LOAD DATA text (MySQL escapes, ``\\N`` for NULL); text values carry
    :data:`TEXT_PREFIX` when ``prefix`` (decided for the whole column by
    :func:`null_text_columns`)."""
    text, missing = _stored_text(series, column)
    if column.sql_type in TEXT_TYPES:
        text = _escape_text(text)
        if prefix:
            text = TEXT_PREFIX + text
    if missing.any():
        text = text.where(~missing, _NULL)
    return text


def sql_values(frame: pd.DataFrame, schema: TableSchema) -> list[list[Any]]:
    """Each column as the values of a parameterised ``INSERT`` (the same text as
    :func:`encode_tsv`'s, unescaped: the client escapes it; ``None`` for NULL)."""
    columns = []
    for column in schema.columns:
        text, missing = _stored_text(frame[column.name], column)
        values = text.tolist()
        if missing.any():
            values = [None if m else v for v, m in zip(values, missing, strict=True)]
        columns.append(values)
    return columns


#: Rows encoded at a time when writing a save's file: bounds the memory a save needs.
CHUNK_ROWS = 50_000


def encode_tsv(
    frame: pd.DataFrame, schema: TableSchema, prefixed: frozenset[str], size: int | None = None
) -> Iterator[bytes]:
    """``frame`` as LOAD DATA input, ``size`` rows at a time (``prefixed``: the columns of
    :func:`null_text_columns`), for a writer that streams them while Dolt reads."""
    return _chunks(frame, schema, prefixed, size or CHUNK_ROWS)


def null_text_columns(frame: pd.DataFrame, schema: TableSchema) -> frozenset[str]:
    """Text columns holding the string ``NULL``, which LOAD DATA would read as SQL NULL."""
    text = [c.name for c in schema.columns if c.sql_type in TEXT_TYPES and len(frame)]
    # Compared in the column's own dtype: astype(object) would make a Python str per row.
    return frozenset(name for name in text if bool((frame[name] == "NULL").any()))


def _chunks(
    frame: pd.DataFrame, schema: TableSchema, prefixed: frozenset[str], size: int
) -> Iterator[bytes]:
    for start in range(0, len(frame), size):
        part = frame.iloc[start : start + size]
        try:  # text with lone surrogates fails here (pandas 3 strings are Arrow: UTF-8 only)
            encoded = [
                _tsv_column(part.iloc[:, i], c, c.name in prefixed)
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


def _string_dtype(name: str) -> Any:
    if name.startswith("str[") and name.endswith("]"):  # see _string_label
        return pd.StringDtype(name[4:-1], na_value=np.nan)
    if name == "str":
        return pd.StringDtype(na_value=np.nan) if _PANDAS_3 else object
    if name.startswith("string"):
        return pd.api.types.pandas_dtype(name)
    return object


def _cast(series: pd.Series, column: Column) -> pd.Series:
    """A column decoded from :func:`~.column_types.canonical`'s Arrow form, as ``column``'s
    dtype."""
    dtype = column.dtype
    found = column_types.kind(column.sql_type)
    if found == "decimal":
        return column_types.decimals(series, column.sql_type)
    if found == "bool" or dtype in ("bool", "boolean"):
        return series.astype("boolean").astype(dtype)
    if found == "datetime" or dtype.startswith("datetime64"):
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


def exact_from_text(table: pa.Table, schema: TableSchema) -> bool:
    """Whether ``table``'s columns either arrived typed or are text that
    :func:`decode_table` turns into the values exactly (otherwise read them typed): the CSV
    text of every type :mod:`.column_types` knows is."""
    for column in schema.columns:
        text = pa.types.is_string(table.schema.field(column.name).type)
        if text and column_types.kind(column.sql_type) not in column_types.KNOWN_KINDS:
            return False
    return True


def _typed(table: pa.Table, schema: TableSchema) -> pa.Table:
    """Each column in the one Arrow form of its SQL type, whatever the transport gave."""
    for column in schema.columns:
        index = table.schema.get_field_index(column.name)
        values = column_types.canonical(table.column(index), column.sql_type)
        table = table.set_column(index, column.name, values)
    return table


def decode_table(table: pa.Table, schema: TableSchema | None = None) -> pd.DataFrame:
    """Turn Dolt's Arrow output into a DataFrame with the dtypes ``schema`` records.

    With a schema, columns may arrive in any transport's form (``dolt sql -r csv`` text,
    Parquet, connectorx or PyMySQL Arrow): they are brought to one form per SQL type first
    (:func:`~.column_types.canonical`), so every path gives the same values and dtypes.
    Without a schema (ad-hoc SQL) dtypes follow Arrow's: integers
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


# --- a committed frame as Dolt returns it (for the load cache) -------------------------------

#: dtypes whose values a load gives back exactly as saved, and :func:`dolt_form` writes as a
#: typed read of Dolt returns them (an object column holds text: see ``schema``). Columns of
#: tables made elsewhere (decimals, dates, ...) are cached when read.
_CACHEABLE = re.compile(r"(u?int|Int|UInt|float|Float|bool|boolean|str|string|datetime64)|object$")


def dolt_form(frame: pd.DataFrame, schema: TableSchema) -> pa.Table | None:
    """``frame`` (a save's stored frame) as a typed read of the table it committed, such that
    :func:`decode_table` gives back exactly those rows; ``None`` when that is not certain.

    Rows come in key order, as Dolt reads a keyed table. A keyless table is read in Dolt's
    storage order, which only Dolt knows: its rows come in the order of the columns that
    hold the saved frame's row order (see :func:`row_order`), or are not cached here."""
    keys = row_order(schema)
    if (
        not keys
        or list(frame.columns) != schema.names
        or not all(_CACHEABLE.match(c.dtype) for c in schema.columns)
    ):
        return None
    if not schema.primary_key and frame.duplicated(keys).any():
        return None
    # Code point order, as Dolt's binary collation; keys are unique (checked before saving).
    if len(keys) == 1 and frame[keys[0]].is_monotonic_increasing:
        frame = frame.reset_index(drop=True)  # e.g. the row-order column: sorted already
    else:
        frame = frame.sort_values(keys, kind="stable", ignore_index=True)
    arrays = {}
    for column in schema.columns:
        series = frame[column.name]
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            if getattr(series.dtype, "tz", None) is not None:
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            series = series.astype("datetime64[us]")
        arrays[column.name] = pa.Array.from_pandas(series.reset_index(drop=True))
    table = pa.table(arrays)
    return table if _same(decode_table(table, schema), frame) else None


def row_order(schema: TableSchema) -> list[str]:
    """The columns whose order is the table's row order: its primary key, or in a keyless
    table those holding the saved frame's row order or index (which a dataset sorts by);
    ``[]`` when only Dolt's storage order is left."""
    if schema.primary_key:
        return list(schema.primary_key)
    order = [c.name for c in schema.columns if c.role == "order"]
    return order or [c.name for c in schema.columns if c.role.startswith("index")]


def _same(decoded: pd.DataFrame, frame: pd.DataFrame) -> bool:
    """Equal dtypes, and equal values to the bit (a float's sign of zero included)."""
    if not decoded.dtypes.equals(frame.dtypes) or len(decoded) != len(frame):
        return False
    for name in frame.columns:
        a, b = decoded[name], frame[name]
        if a.dtype.kind == "f":  # NaN is NULL in Dolt, whatever its bits; -0.0 is not 0.0
            x = a.to_numpy(dtype="float64", na_value=np.nan)
            y = b.to_numpy(dtype="float64", na_value=np.nan)
            nan = np.isnan(x)
            if not np.array_equal(nan, np.isnan(y)) or x[~nan].tobytes() != y[~nan].tobytes():
                return False
        elif not a.reset_index(drop=True).equals(b.reset_index(drop=True)):
            return False
    return True
