"""The one check every save passes before anything is written, in every mode and on every path.

:func:`stored` gives the frame as Dolt will store it, so that what is checked, hashed, compared
and written is one and the same: datetimes in microseconds (Dolt's ``datetime(6)``), and
``-0.0`` as ``0.0`` in keys (Dolt compares them equal) and wherever the write goes through SQL
``INSERT`` (a server's loads, which make it ``0.0``). It refuses what Dolt would store
differently from what the frame says: a primary key repeated at the stored precision (a full
write would fail on it, a replace would silently keep the last row), and datetimes Dolt cannot
hold.

:func:`conform` checks an append or upsert against the table it goes into.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import DoltError
from .fingerprint import key_columns
from .schema import Column, TableSchema

#: How many offending keys an error shows.
SHOWN = 5
#: Dolt's ``datetime(6)`` holds years 1 to 9999 (pandas' ``datetime64[ns]`` cannot leave them).
FIRST_YEAR, LAST_YEAR = 1, 9999


def stored(frame: pd.DataFrame, schema: TableSchema, *, negative_zero: bool = True) -> pd.DataFrame:
    """``frame`` as Dolt stores it; raise ``DoltError`` (nothing written) for what it cannot
    store as given. ``negative_zero``: whether the write keeps ``-0.0`` (Dolt's ``LOAD
    DATA`` does, its ``INSERT`` makes it ``0.0``). Columns that need no change are not
    copied."""
    changed: dict[str, pd.Series] = {}
    for column in schema.columns:
        series = frame[column.name]
        if column.sql_type == "datetime(6)":
            series = _microseconds(series, column)
        elif column.sql_type in ("double", "float") and (
            not negative_zero or column.name in schema.primary_key
        ):
            series = _no_negative_zero(series)
        if series is not frame[column.name]:
            changed[column.name] = series
    result = frame.assign(**changed) if changed else frame
    _check_unique_keys(result, schema)
    return result


def _microseconds(series: pd.Series, column: Column) -> pd.Series:
    unit = getattr(series.dtype, "unit", None) or np.datetime_data(series.dtype)[0]
    if unit != "ns":  # seconds to microseconds: outside pandas' ns range, so check the years
        years = series.dropna().dt.year
        if len(years) and (years.min() < FIRST_YEAR or years.max() > LAST_YEAR):
            bad = years[(years < FIRST_YEAR) | (years > LAST_YEAR)]
            raise DoltError(
                f"Column {column.name!r} holds the year {int(bad.iloc[0])}: Dolt's datetime "
                f"columns hold years {FIRST_YEAR} to {LAST_YEAR}; nothing was saved.",
                fix="replace such values (e.g. with NaT) before saving.",
            )
        if unit in ("s", "ms", "us"):
            return series
    floored = series.dt.floor("us")
    return series if floored.equals(series) else floored


def _no_negative_zero(series: pd.Series) -> pd.Series:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    if not np.any((values == 0) & np.signbit(values)):
        return series
    return series + 0.0  # -0.0 + 0.0 is 0.0; NaN and NA stay


def _check_unique_keys(frame: pd.DataFrame, schema: TableSchema) -> None:
    if not schema.primary_key or len(frame) < 2:
        return
    keys = key_columns(frame, schema)
    present = frame[list(schema.primary_key)].notna().all(axis=1).to_numpy()
    repeated = keys.duplicated(keep=False).to_numpy() & present  # NULL keys: Dolt refuses
    if not repeated.any():
        return
    shown = _key_values(frame.loc[repeated, list(schema.primary_key)].drop_duplicates())
    raise DoltError(
        f"The frame holds duplicate primary key values {shown[:SHOWN]}"
        + (f" and {len(shown) - SHOWN} more" if len(shown) > SHOWN else "")
        + f" in {list(schema.primary_key)} (compared as Dolt stores them: datetimes to the "
        "microsecond); each key must appear once. Nothing was saved.",
        fix="make the save_args.primary_key columns unique, e.g. "
        "df = df.drop_duplicates(subset=primary_key, keep='last') (check "
        "df.duplicated(subset=primary_key, keep=False)).",
    )


def _key_values(keys: pd.DataFrame) -> list[Any]:
    rows = [tuple(_plain(v) for v in row) for row in keys.itertuples(index=False)]
    return [row[0] if len(row) == 1 else list(row) for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def conform(
    frame: pd.DataFrame, schema: TableSchema, table: str, existing: TableSchema, mode: str
) -> tuple[pd.DataFrame, TableSchema]:
    """``frame`` and its schema ready to be added to the existing table (``mode`` append or
    upsert): the same columns, types and key, named as the table names them (Dolt's names
    ignore case), and times on the same side of time zones. Raises ``DoltError`` otherwise."""
    if not schema.same_table(existing):
        raise DoltError(
            f"Cannot {mode} into table {table!r}: the frame's columns, types or "
            f"primary key {schema.names} ({list(schema.primary_key)}) differ from "
            f"the table's {existing.names} ({list(existing.primary_key)}); "
            "nothing was changed.",
            fix="make the frame match the table, or save with mode overwrite to "
            "replace the table and its schema.",
        )
    for mine, theirs in zip(schema.columns, existing.columns, strict=True):
        if mine.sql_type == "datetime(6)" and _aware(mine.dtype) != _aware(theirs.dtype):
            has, lacks = ("holds", "lack") if _aware(mine.dtype) else ("lacks", "hold")
            raise DoltError(
                f"Cannot {mode} into table {table!r}: column {mine.name!r} {has} a time zone "
                f"({mine.dtype}) and the table's times {lacks} one ({theirs.dtype}); "
                "nothing was changed.",
                fix="convert the column first, e.g. df[col] = df[col].dt.tz_localize('UTC') "
                "or df[col] = df[col].dt.tz_convert('UTC').dt.tz_localize(None).",
            )
    if schema.names == existing.names:
        return frame, schema
    renamed = dict(zip(schema.names, existing.names, strict=True))
    columns = tuple(
        Column(renamed[c.name], c.sql_type, c.nullable, c.dtype) for c in schema.columns
    )
    return (
        frame.rename(columns=renamed),
        TableSchema(columns, tuple(renamed[k] for k in schema.primary_key)),
    )


def _aware(dtype: str) -> bool:
    return "," in dtype or "tz" in dtype.lower()
