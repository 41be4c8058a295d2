"""Memo rows: what is stored, that a row not written whole by kedro-dolt is never used, and
that a row edited by hand loses this user's seal."""

from __future__ import annotations

import json
import os

import pytest

from kedro_dolt.framework.incremental import seal
from kedro_dolt.framework.incremental.memo import MemoEntry, Output, memo_key

ENTRY = MemoEntry(
    node="double",
    code="c0de",
    signature="519n",
    params={"params:factor": "params:aa"},
    inputs={"raw": "dolt:bb#cfg:1", "labels": "file:cc#cfg:2"},
    outputs={"doubled": Output("dolt:cc#cfg:3", "commit1", "doubled", "/repo")},
    run_id="2026-12-03T10.00.00.000Z",
)


def test_a_row_reads_back_as_its_entry_sealed():
    again = MemoEntry.from_row(ENTRY.row())
    assert again == ENTRY and again is not None and again.sealed


def test_the_key_follows_positions_not_just_names():
    swapped = dict(reversed(list(ENTRY.inputs.items())))
    assert memo_key("c", "s", {}, dict(ENTRY.inputs)) != memo_key("c", "s", {}, swapped)
    assert memo_key("c", "s", {}, {}) != memo_key("c", "t", {}, {})


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("outputs", "{not json"),
        ("inputs", '{"raw": "a mapping"}'),
        ("params", '[["params:factor", 3]]'),
        ("outputs", '{"doubled": "no version"}'),
        ("inputs", '[["raw", "dolt:edited"]]'),  # the key no longer matches the content
        ("signature", "other"),
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


def test_an_output_edited_by_hand_breaks_the_seal():
    row = ENTRY.row()
    outputs = json.loads(row["outputs"])
    outputs["doubled"]["version"] = "dolt:forged#cfg:3"
    edited = MemoEntry.from_row({**row, "outputs": json.dumps(outputs)})
    assert edited is not None and not edited.sealed  # read, but not believed as this user's


def test_another_users_key_does_not_seal(tmp_path, monkeypatch):
    row = ENTRY.row()
    monkeypatch.setenv(seal.KEY_ENV, str(tmp_path / "other.key"))
    entry = MemoEntry.from_row(row)
    assert entry is not None and not entry.sealed


def test_a_key_others_can_read_seals_nothing(tmp_path, monkeypatch):
    key = tmp_path / "open.key"
    key.write_text("ab" * 32)
    os.chmod(key, 0o644)
    monkeypatch.setenv(seal.KEY_ENV, str(key))
    assert seal.seal({"a": "b"}) == ""
    assert not seal.sealed({"a": "b"}, "")


def test_the_key_is_made_private(tmp_path, monkeypatch):
    key = tmp_path / "new" / "memo.key"
    monkeypatch.setenv(seal.KEY_ENV, str(key))
    assert seal.seal({"a": "b"})
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.parent.stat().st_mode & 0o777 == 0o700
