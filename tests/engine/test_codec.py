"""The row codec: what a frame's rows look like on the way to LOAD DATA."""

from __future__ import annotations

import numpy as np
import pandas as pd

from kedro_dolt.engine.codec import encode_tsv, null_text_columns
from kedro_dolt.engine.schema import TableSchema


def encoded(frame: pd.DataFrame) -> bytes:
    schema = TableSchema.from_frame(frame)
    return b"".join(encode_tsv(frame, schema, null_text_columns(frame, schema)))


class TestEncodeRows:
    def test_mysql_escapes_and_null_marker(self):
        frame = pd.DataFrame(
            {
                "s": pd.Series(["t\tn\nr\rb\\", None, ""], dtype=object),
                "i": pd.array([1, None, 3], dtype="Int64"),
                "f": [0.1, np.nan, 1e300],
                "b": [True, False, True],
            }
        )
        text = encoded(frame).decode()
        assert text.splitlines() == [
            "t\\tn\\nr\\rb\\\\\t1\t0.1\t1",
            "\\N\t\\N\t\\N\t0",
            "\t3\t1e+300\t1",
        ]

    def test_tz_aware_times_are_stored_in_utc(self):
        frame = pd.DataFrame(
            {"t": pd.to_datetime(["2026-01-01 12:00"]).tz_localize("Europe/Amsterdam")}
        )
        assert encoded(frame) == b"2026-01-01 11:00:00.000000\n"
