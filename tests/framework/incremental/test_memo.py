"""Memo rows: what is stored, and that a row not written whole by kedro-dolt is never used."""

from __future__ import annotations

import pytest

from kedro_dolt.framework.incremental.memo import MemoEntry, Output

ENTRY = MemoEntry(
    node="double",
    code="c0de",
    params={"params:factor": "params:aa"},
    inputs={"raw": "dolt:bb"},
    outputs={"doubled": Output("dolt:cc", "commit1")},
    run_id="2026-12-03T10.00.00.000Z",
)


def test_a_row_reads_back_as_its_entry():
    assert MemoEntry.from_row(ENTRY.row()) == ENTRY


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("outputs", "{not json"),
        ("inputs", '["a list"]'),
        ("params", '{"params:factor": 3}'),
        ("outputs", '{"doubled": "no version"}'),
        ("inputs", '{"raw": "dolt:edited"}'),  # the key no longer matches the content
        ("memo_key", "0" * 64),
    ],
)
def test_an_edited_or_broken_row_is_never_used(column, value):
    row = {**ENTRY.row(), column: value}
    assert MemoEntry.from_row(row) is None


def test_a_row_missing_a_column_is_never_used():
    row = ENTRY.row()
    del row["code"]
    assert MemoEntry.from_row(row) is None
