"""Row fingerprints: the pure-Python half of the fast save paths (no Dolt needed here; the
save paths themselves are tested against real Dolt in tests/datasets/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kedro_dolt.engine import fingerprint
from kedro_dolt.engine.fingerprint import Fingerprint, delta
from kedro_dolt.engine.schema import TableSchema


def frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": np.arange(n), "s": pd.Series([f"v{i}" if i % 5 else None for i in range(n)])}
    )


def fp(data: pd.DataFrame) -> Fingerprint:
    schema = TableSchema.from_frame(data, ["id"])
    return Fingerprint.of(data, schema, schema.ddl("t"))


def test_chunked_hashes_equal_whole_frame_hashes(monkeypatch):
    data = frame(103)
    schema = TableSchema.from_frame(data, ["id"])
    whole = fingerprint.row_hashes(data, schema)
    monkeypatch.setattr(fingerprint, "HASH_CHUNK_ROWS", 7)
    chunked = fingerprint.row_hashes(data, schema)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        # pandas' own hash of <NA> equals the hash of these values (issue 15, item 4)
        ("Float64", 7.038378726374037e19),
        ("Int64", 4904004565857947459),
        ("UInt64", 4904004565857947459),
        ("Float64", 0.0),
        ("Int64", 0),
        ("boolean", False),
        ("string", ""),
        (object, ""),
    ],
)
def test_a_null_never_hashes_like_a_value(dtype, value):
    nulls = pd.DataFrame({"id": range(10), "v": pd.array([None] * 10, dtype=dtype)})
    filled = nulls.copy()
    filled.loc[0, "v"] = value
    assert not fp(nulls).same_rows(fp(filled))
    change = delta(fp(nulls), fp(filled))
    assert change is not None and change.upserts.tolist() == [0]


def test_nulls_in_more_than_64_columns_still_count():
    wide = pd.DataFrame({f"c{i}": pd.array([1, None], dtype="Int64") for i in range(70)})
    wide.insert(0, "id", [1, 2])
    other = wide.copy()
    other.loc[0, "c69"], other.loc[1, "c69"] = None, 1
    assert not fp(wide).same_rows(fp(other))


def test_keys_and_hashes_are_positional():
    """Columns named like internal ones (``_merge``, the old row-hash column) are data."""
    data = pd.DataFrame({"_merge": np.arange(10), "__kedro_dolt_row_hash__": np.arange(10)})
    schema = TableSchema.from_frame(data, ["_merge"])
    old = Fingerprint.of(data, schema, schema.ddl("t"))
    new = Fingerprint.of(data.iloc[2:], schema, schema.ddl("t"))
    change = delta(old, new)
    assert change is not None and change.deletes["k0"].tolist() == [0, 1]
    upserted = old.upserted(new)
    assert upserted.keys["k0"].tolist() == list(range(10))


def test_same_rows_ignores_order_but_not_values():
    data = frame()
    assert fp(data).same_rows(fp(data.sample(frac=1, random_state=3)))
    assert not fp(data).same_rows(fp(data.assign(s="x")))


def test_delta_names_added_changed_and_deleted_rows():
    old = frame()
    new = old[old["id"] != 4].copy()
    new.loc[new["id"] == 9, "s"] = "changed"
    new = pd.concat([new, pd.DataFrame({"id": [100], "s": ["added"]})], ignore_index=True)
    change = delta(fp(old), fp(new))
    assert change is not None
    assert sorted(new["id"].iloc[change.upserts]) == [9, 100]
    assert change.deletes["k0"].tolist() == [4]


def test_no_delta_for_another_schema_or_large_changes():
    old = frame()
    assert delta(fp(old), fp(old.assign(extra=1))) is None
    assert delta(fp(old), fp(old.assign(s="all changed"))) is None
