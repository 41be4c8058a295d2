"""Row fingerprints: the pure-Python half of the fast save paths (no Dolt needed here; the
save paths themselves are tested against real Dolt in tests/datasets/)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kedro_dolt import fingerprint
from kedro_dolt.fingerprint import Fingerprint, delta
from kedro_dolt.schema import TableSchema


def frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": np.arange(n), "s": pd.Series([f"v{i}" if i % 5 else None for i in range(n)])}
    )


def fp(data: pd.DataFrame) -> Fingerprint:
    schema = TableSchema.from_frame(data, ["id"])
    return Fingerprint.of(data, schema, schema.ddl("t"))


def test_chunked_hashes_equal_whole_frame_hashes(monkeypatch):
    data = frame(103)
    monkeypatch.setattr(fingerprint, "HASH_CHUNK_ROWS", 7)
    whole = pd.util.hash_pandas_object(data, index=False).to_numpy(dtype="uint64")
    np.testing.assert_array_equal(fingerprint.row_hashes(data), whole)


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
    assert change.deletes["id"].tolist() == [4]


def test_no_delta_for_another_schema_duplicates_or_large_changes():
    old = frame()
    assert delta(fp(old), fp(old.assign(extra=1))) is None
    assert delta(fp(old), fp(pd.concat([old, old.iloc[:1]], ignore_index=True))) is None
    assert delta(fp(old), fp(old.assign(s="all changed"))) is None
