"""Plain text tables for ``kedro dolt``: aligned, without markup (branch names print as they
are), fitted to the terminal; and the diff of a table shown by key and changed columns."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

import pandas as pd

#: Columns of ``dolt_diff`` rows that say when, not what.
DIFF_META = ("from_commit", "to_commit", "from_commit_date", "to_commit_date", "diff_type")
#: A cell is cut to at least this many characters when the table must fit the terminal.
MIN_CELL = 12


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table (no markup, so branch names print as they are)."""
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(text.rstrip() for text in [line, rule, *body])


def terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


def fitted(rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int) -> str:
    """:func:`render`, with cells cut (``…``) and trailing columns left out so that each line
    fits ``width``; a last line names what was left out."""
    cells = [{c: "" if r.get(c) is None else str(r.get(c)) for c in columns} for r in rows]
    limit = max(MIN_CELL, width // max(len(columns), 1) - 2)
    cut = [{c: _cut(v, limit) for c, v in row.items()} for row in cells]
    shown: list[str] = []
    used = 0
    for column in columns:
        need = max([len(column), *(len(row[column]) for row in cut)]) + 2
        if shown and used + need > width:
            break
        shown.append(column)
        used += need
    text = render(cut, shown)
    left = [c for c in columns if c not in shown]
    if left:
        text += f"\n({len(left)} more column(s) not shown: {', '.join(left)}; see --json)"
    return text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_rows(
    changes: pd.DataFrame, key: Sequence[str], all_columns: bool, order: Sequence[str] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """``dolt_diff`` rows as one row per changed table row: its change, its key, and each
    shown column as ``old → new`` (modified), or its value (added, removed). Shown are the
    columns some modified row changed (all of them with ``all_columns``, or when no row was
    modified), in the table's ``order`` of columns."""
    records = changes.astype(object).where(changes.notna(), None).to_dict("records")
    values = _changed_columns(records, changes.columns, key, all_columns)
    rank = {name: i for i, name in enumerate(order)}
    values.sort(key=lambda name: (rank.get(name, len(rank)), name))
    return [_diff_row(r, key, values) for r in records], ["change", *key, *values]


def _changed_columns(
    records: list[dict[str, Any]], names: Sequence[str], key: Sequence[str], all_columns: bool
) -> list[str]:
    sides = {c.partition("_")[2] for c in names if c not in DIFF_META and "_" in c}
    values = [c for c in sorted(sides) if c not in key]
    modified = [r for r in records if r.get("diff_type") == "modified"]
    if all_columns or not modified:
        return values
    return [c for c in values if any(r.get(f"from_{c}") != r.get(f"to_{c}") for r in modified)]


def _diff_row(record: dict[str, Any], key: Sequence[str], values: Sequence[str]) -> dict[str, Any]:
    kind = str(record.get("diff_type") or "")
    side = "from_" if kind == "removed" else "to_"
    row: dict[str, Any] = {"change": kind}
    row.update({k: record.get(f"{side}{k}") for k in key})
    for column in values:
        old, new = record.get(f"from_{column}"), record.get(f"to_{column}")
        if kind == "modified" and old != new:
            row[column] = f"{_text(old)} → {_text(new)}"
        else:
            row[column] = old if kind == "removed" else new
    return row


def _text(value: Any) -> str:
    return "NULL" if value is None else str(value)
