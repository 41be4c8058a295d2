"""How ``kedro dolt`` prints tables: a diff by key and changed columns, fitted to a terminal."""

from __future__ import annotations

import pandas as pd

from kedro_dolt.framework.render import diff_rows, fitted


def changes() -> pd.DataFrame:
    """``dolt_diff`` rows of a 27-column table where one cell of one row changed."""
    wide = {f"c{i:02d}": i for i in range(25)}
    return pd.DataFrame(
        [
            {
                "diff_type": "modified",
                "from_id": 7,
                "to_id": 7,
                **{f"from_{k}": v for k, v in wide.items()},
                **{f"to_{k}": v for k, v in wide.items()},
                "from_price": 1.5,
                "to_price": 2.5,
            },
            {
                "diff_type": "added",
                "to_id": 9,
                **{f"to_{k}": v for k, v in wide.items()},
                "to_price": 3.0,
            },
            {
                "diff_type": "removed",
                "from_id": 1,
                **{f"from_{k}": v for k, v in wide.items()},
                "from_price": None,
            },
        ]
    )


def test_the_key_and_only_the_columns_that_changed():
    rows, columns = diff_rows(changes(), ["id"], all_columns=False)
    assert columns == ["change", "id", "price"]
    assert rows[0] == {"change": "modified", "id": 7, "price": "1.5 → 2.5"}
    assert rows[1] == {"change": "added", "id": 9, "price": 3.0}
    assert rows[2] == {"change": "removed", "id": 1, "price": None}


def test_all_columns_on_request_in_the_tables_order():
    order = ["id", "price", *(f"c{i:02d}" for i in range(25))]
    _, columns = diff_rows(changes(), ["id"], all_columns=True, order=order)
    assert columns == ["change", *order]


def test_only_added_or_removed_rows_show_every_column():
    only_added = changes().iloc[[1]]
    _, columns = diff_rows(only_added, ["id"], all_columns=False)
    assert len(columns) == 2 + 26


def test_a_table_fits_the_terminal():
    rows, columns = diff_rows(changes(), ["id"], all_columns=True)
    text = fitted(rows, columns, width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines[:-1])
    assert "more column(s) not shown" in lines[-1] and "--json" in lines[-1]
    long = fitted([{"a": "x" * 200}], ["a"], width=40)
    assert max(len(line) for line in long.splitlines()) <= 40 and "…" in long
