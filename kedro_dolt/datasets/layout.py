"""A DataFrame as table rows and back, so that a load returns exactly the frame that was saved:
its index and its row order included, as Parquet does.

A Dolt table is a set of rows (a keyed table is read in key order, a keyless one in Dolt's
storage order) and has no index. ``save_args.index`` decides what is kept besides the data:

* ``auto`` (default): the index is stored as columns unless a load gives it back anyway. A
  keyed table loads in key order with the index 0, 1, 2, ...: a frame whose index is that once
  sorted by key (the usual case: a default index in key order, or any reordering of such a
  frame) stores no index, and its table holds the data columns only. Any other index is
  stored: named levels under their names, unnamed ones as ``index`` (``level_0``,
  ``level_1``... for several); a keyless table always stores it (Dolt keeps no row order).
* ``true``: the index is always stored.
* ``false``: never (the index is dropped; a keyed table loads in key order).

A load puts the rows in the order of the stored index; when the index does not give the
frame's order (it is not strictly increasing), that order is stored too, in a column
:data:`ORDER_COLUMN`. The columns' comments mark their role, so a load sets the index back
and puts the rows in order. So a load returns the frame that was saved, except that a keyed
frame that stored no index comes back in key order (as a reordering of a saved frame is the
same table: saving it again makes no commit).

Effect on diffs: a row whose position changed has a changed ``index`` (or order) value, so
inserting rows in the middle of a frame whose index is stored changes later rows' positions;
keyed tables still diff row by row, by key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from kedro.io.core import DatasetError

from ..engine import TableSchema
from ..engine.column_types import spatial

#: The column that keeps the row order when the stored index does not.
ORDER_COLUMN = "kedro_dolt_row"


def check_index_mode(value: Any) -> str | bool:
    """``save_args.index`` checked: ``auto``, ``True`` or ``False``."""
    if value == "auto" or isinstance(value, bool):
        return value  # type: ignore[no-any-return]
    raise DatasetError(
        f"Invalid save_args.index {value!r}. Fix: use auto (store the index and row order "
        "unless a load gives them back anyway), true (always) or false (drop the index)."
    )


def to_table(
    frame: pd.DataFrame, *, index: str | bool, primary_key: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table rows that keep ``frame`` (its index and order as ``index`` asks), and the
    role of each column that is not data (``index``, ``index-unnamed``, ``order``)."""
    if not _plain_columns(frame) or index is False or not _stores_index(frame, index, primary_key):
        return frame, {}  # (a frame Dolt cannot store as it is gets its error from the schema)
    levels = _level_columns(frame)
    table = frame.reset_index(drop=True)
    roles: dict[str, str] = {}
    for position, (column, named) in enumerate(levels):
        values = frame.index.get_level_values(position)
        table.insert(position, column, pd.Series(values, index=table.index, dtype=values.dtype))
        roles[column] = "index" if named else "index-unnamed"
    if not (frame.index.is_monotonic_increasing and frame.index.is_unique):
        if ORDER_COLUMN in table.columns:
            raise _taken(ORDER_COLUMN)
        table[ORDER_COLUMN] = np.arange(len(frame), dtype="int64")
        roles[ORDER_COLUMN] = "order"
    return table, roles


def from_table(frame: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """The frame that was saved, from the table rows a load read with ``schema``. Spatial
    columns are refused (see :func:`refuse_spatial`)."""
    refuse_spatial(schema)
    roles = {c.name: c.role for c in schema.columns if c.role}
    if not roles:
        return frame
    order = [name for name, role in roles.items() if role == "order"]
    levels = [c.name for c in schema.columns if c.role.startswith("index")]
    if order or levels:
        frame = frame.sort_values(order or levels, kind="stable")
    frame = frame.drop(columns=order)
    if not levels:
        return frame.reset_index(drop=True)
    frame = frame.set_index(levels)
    frame.index.names = [None if roles[name] == "index-unnamed" else name for name in levels]
    return frame


def refuse_spatial(schema: TableSchema) -> None:
    """A load of a spatial column (``GEOMETRY``, ``POINT``, ...) fails, naming the column,
    its type and how to read it: pandas has no type for it, and its raw bytes (Dolt's
    SRID-prefixed WKB) would not be what the column holds."""
    for column in schema.columns:
        if spatial(column.sql_type):
            name = column.name.replace("`", "``")
            raise DatasetError(
                f"Column {column.name!r} has the spatial type {column.sql_type.upper()}, "
                "which DoltTableDataset does not load. Fix: read it as text with a "
                f"DoltSQLQueryDataset (e.g. sql: SELECT ..., ST_AsText(`{name}`) AS `{name}` "
                "FROM ...), or leave it out with load_args.columns."
            )


def role_columns(schema: TableSchema) -> list[str]:
    """The columns a load needs besides the data columns it asks for."""
    return [c.name for c in schema.columns if c.role]


def _plain_columns(frame: pd.DataFrame) -> bool:
    """Whether the frame has columns, each named by a string (else it is refused as it is)."""
    return len(frame.columns) > 0 and all(isinstance(c, str) for c in frame.columns)


def _stores_index(frame: pd.DataFrame, index: str | bool, primary_key: Sequence[str]) -> bool:
    if index is True or not primary_key:
        return True  # a keyless table loads in Dolt's order: the index keeps the frame's
    if any(key not in frame.columns for key in primary_key):
        return False  # the schema names the missing key column
    # A keyed table loads in key order, with the index 0, 1, 2, ...: is that the frame's?
    keys = frame[list(primary_key)].reset_index(drop=True)  # (an index level may share a name)
    labels = frame.index[keys.sort_values(list(primary_key), kind="stable").index]
    return not (
        labels.nlevels == 1
        and labels.name is None
        and pd.api.types.is_integer_dtype(labels.dtype)
        and np.array_equal(labels.to_numpy(), np.arange(len(labels)))
    )


def _level_columns(frame: pd.DataFrame) -> list[tuple[str, bool]]:
    """``(column, named)`` per index level: its name, or ``index`` / ``level_N``."""
    names = list(frame.index.names)
    out = []
    for position, name in enumerate(names):
        if name is None:
            column, named = f"level_{position}", False
            if len(names) == 1 and "index" not in frame.columns:
                column = "index"  # as DataFrame.reset_index names it
        elif isinstance(name, str):
            column, named = name, True
        else:
            raise DatasetError(
                f"The index level name {name!r} is not a string, so it cannot name a column. "
                "Fix: rename it (df.index.name = 'id') or set save_args.index: false."
            )
        if column in frame.columns:
            raise _taken(column)
        out.append((column, named))
    return out


def _taken(column: str) -> DatasetError:
    return DatasetError(
        f"The frame's index is stored as column {column!r}, but the frame has a column of "
        f"that name already. Fix: rename the column or the index level, or set "
        "save_args.index: false to drop the index."
    )
