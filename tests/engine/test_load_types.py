"""Issue 25, item 4: one exact type map for loads (see kedro_dolt/engine/column_types.py).

A table made outside kedro-dolt, with plain SQL, holding every MySQL type Dolt accepts (edge
values and NULLs), loads to the same frame, with the same dtypes, on every path: the CLI
engine outside a run, the run's own server (a Kedro run), the server engine, and the load
cache. Spatial columns are refused with a message that names the column, its type and the fix.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset
from kedro_dolt.engine import load_cache
from kedro_dolt.engine.known_versions import known_versions
from kedro_dolt.engine.load_cache import CacheKey, LoadCache
from kedro_dolt.engine.run_server import RunServers
from tests.conftest import dolt
from tests.support.dolt_server import DoltServer


def f32(text: str) -> float:
    """A FLOAT's value: the float32 nearest ``text``, widened."""
    return float(np.float32(text))


def us(*values: str | None) -> np.ndarray:
    return np.array([v or "NaT" for v in values], dtype="datetime64[us]")


def td(*values: pd.Timedelta | None) -> pd.Series:
    return pd.Series([pd.NaT if v is None else v for v in values], dtype="timedelta64[us]")


H = pd.Timedelta(hours=1)
S = pd.Timedelta(seconds=1)
MICRO = pd.Timedelta(microseconds=1)
WIDE = "-99999999999999999999999999999999999.999999999999999999999999999999"

#: (column, SQL type, the SQL literal of each of the 3 rows, the loaded column).
COLUMNS: list[tuple[str, str, list[str], Any]] = [
    ("id", "INT NOT NULL", ["1", "2", "3"], pd.Series([1, 2, 3], dtype="int32")),
    ("ti", "TINYINT", ["-128", "127", "NULL"], pd.array([-128, 127, None], dtype="Int8")),
    ("tiu", "TINYINT UNSIGNED", ["255", "0", "NULL"], pd.array([255, 0, None], dtype="UInt8")),
    ("si", "SMALLINT", ["-32768", "32767", "NULL"], pd.array([-(2**15), 2**15 - 1, None], "Int16")),
    ("siu", "SMALLINT UNSIGNED", ["65535", "0", "NULL"], pd.array([65535, 0, None], "UInt16")),
    (
        "mi",
        "MEDIUMINT",
        ["-8388608", "8388607", "NULL"],
        pd.array([-(2**23), 2**23 - 1, None], "Int32"),
    ),
    (
        "miu",
        "MEDIUMINT UNSIGNED",
        ["16777215", "0", "NULL"],
        pd.array([2**24 - 1, 0, None], "UInt32"),
    ),
    (
        "i",
        "INT",
        ["-2147483648", "2147483647", "NULL"],
        pd.array([-(2**31), 2**31 - 1, None], "Int32"),
    ),
    ("iu", "INT UNSIGNED", ["4294967295", "0", "NULL"], pd.array([2**32 - 1, 0, None], "UInt32")),
    (
        "bi",
        "BIGINT",
        ["-9223372036854775808", "9223372036854775807", "NULL"],
        pd.array([-(2**63), 2**63 - 1, None], dtype="Int64"),
    ),
    (
        "biu",
        "BIGINT UNSIGNED",
        ["18446744073709551615", "0", "NULL"],
        pd.array([2**64 - 1, 0, None], dtype="UInt64"),
    ),
    (
        "nbu",
        "BIGINT UNSIGNED NOT NULL",
        ["18446744073709551615", "0", "1"],
        pd.Series([2**64 - 1, 0, 1], dtype="uint64"),
    ),
    ("b1", "BIT(1)", ["b'1'", "b'0'", "NULL"], pd.array([True, False, None], dtype="boolean")),
    ("b8", "BIT(8)", ["b'00000101'", "b'11111111'", "NULL"], pd.array([5, 255, None], "UInt8")),
    ("b12", "BIT(12)", ["4095", "1", "NULL"], pd.array([4095, 1, None], dtype="UInt16")),
    (
        "b64",
        "BIT(64)",
        ["18446744073709551615", "0", "NULL"],
        pd.array([2**64 - 1, 0, None], dtype="UInt64"),
    ),
    ("nb", "BIT(8) NOT NULL", ["5", "0", "255"], pd.Series([5, 0, 255], dtype="uint8")),
    ("bo", "BOOL", ["true", "false", "NULL"], pd.array([True, False, None], dtype="boolean")),
    ("nbo", "BOOL NOT NULL", ["false", "true", "1"], pd.Series([False, True, True])),
    (
        "f",
        "FLOAT",
        ["0.1", "-3.40282e38", "NULL"],
        pd.Series([f32("0.1"), f32("-3.40282e38"), np.nan]),
    ),
    (
        "d",
        "DOUBLE",
        ["5e-324", "-1.7976931348623157e308", "NULL"],
        pd.Series([5e-324, -1.7976931348623157e308, np.nan]),
    ),
    (
        "de",
        "DECIMAL(10,2)",
        ["12345678.91", "-0.01", "NULL"],
        pd.Series([Decimal("12345678.91"), Decimal("-0.01"), None], dtype=object),
    ),
    (
        "dw",
        "DECIMAL(65,30)",
        [WIDE, "0", "NULL"],
        pd.Series([Decimal(WIDE), Decimal("0E-30"), None], dtype=object),
    ),
    ("c", "CHAR(5)", ["'ab'", "''", "NULL"], pd.Series(["ab", "", None], dtype="str")),
    (
        "vc",
        "VARCHAR(20)",
        ["'héllo'", "'NULL'", "NULL"],
        pd.Series(["héllo", "NULL", None], dtype="str"),
    ),
    (
        "tx",
        "TEXT",
        ["'x,\"y\"\\r\\nz'", "''", "NULL"],
        pd.Series(['x,"y"\r\nz', "", None], dtype="str"),
    ),
    (
        "nv",
        "VARCHAR(5) NOT NULL",
        ["'a'", "''", "'NULL'"],
        pd.Series(["a", "", "NULL"], dtype="str"),
    ),
    (
        "bn",
        "BINARY(4)",
        ["x'00010203'", "x'00'", "NULL"],
        pd.Series([b"\x00\x01\x02\x03", b"\x00" * 4, None], dtype=object),
    ),
    (
        "vb",
        "VARBINARY(10)",
        ["x'ff002c0d0a22'", "x''", "NULL"],
        pd.Series([b'\xff\x00,\r\n"', b"", None], dtype=object),
    ),
    (
        "bl",
        "BLOB",
        ["x'deadbeef'", "'NULL'", "NULL"],
        pd.Series([b"\xde\xad\xbe\xef", b"NULL", None], dtype=object),
    ),
    ("lb", "LONGBLOB", ["x''", "x'41'", "NULL"], pd.Series([b"", b"A", None], dtype=object)),
    ("dt", "DATE", ["'1000-01-01'", "'9999-12-31'", "NULL"], us("1000-01-01", "9999-12-31", None)),
    (
        "dtm",
        "DATETIME",
        ["'9999-12-31 23:59:59'", "'1000-01-01 00:00:00'", "NULL"],
        us("9999-12-31T23:59:59", "1000-01-01", None),
    ),
    (
        "dtm6",
        "DATETIME(6)",
        ["'2024-02-29 12:34:56.123456'", "'1970-01-01 00:00:00.000001'", "NULL"],
        us("2024-02-29T12:34:56.123456", "1970-01-01T00:00:00.000001", None),
    ),
    (
        "ts",
        "TIMESTAMP(3)",
        ["'2038-01-19 03:14:07.999'", "'2000-01-01 00:00:00'", "NULL"],
        us("2038-01-19T03:14:07.999", "2000-01-01", None),
    ),
    (
        "tm",
        "TIME",
        ["'-838:59:59'", "'838:59:59'", "NULL"],
        td(-(838 * H + 59 * 60 * S + 59 * S), 838 * H + 59 * 60 * S + 59 * S, None),
    ),
    (
        "tm6",
        "TIME(6)",
        ["'-00:00:00.000001'", "'25:00:00.5'", "NULL"],
        td(-MICRO, 25 * H + 500_000 * MICRO, None),
    ),
    ("nt", "TIME NOT NULL", ["'-01:00:00'", "'00:00:00'", "'100:00:00'"], td(-H, 0 * H, 100 * H)),
    ("y", "YEAR", ["1901", "2155", "NULL"], pd.array([1901, 2155, None], dtype="Int16")),
    ("ny", "YEAR NOT NULL", ["2000", "1901", "2155"], pd.Series([2000, 1901, 2155], dtype="int16")),
    ("e", "ENUM('a','b','c')", ["'b'", "'c'", "NULL"], pd.Series(["b", "c", None], dtype="str")),
    ("st", "SET('a','b','c')", ["'a,c'", "''", "NULL"], pd.Series(["a,c", "", None], dtype="str")),
    (
        "j",
        "JSON",
        ['\'{"k": [1, 2.5, "x", null], "z": true}\'', "'[1, \"two\"]'", "NULL"],
        pd.Series(['{"k":[1,2.5,"x",null],"z":true}', '[1,"two"]', None], dtype="str"),
    ),
]
#: Columns connectorx (a server's fast read) does not read exactly: the table ``fast`` leaves
#: them out, so that its loads through a server go by connectorx.
SLOW = {"dw", "tm", "tm6", "nt"}
TABLES = {"every": [c[0] for c in COLUMNS], "fast": [c[0] for c in COLUMNS if c[0] not in SLOW]}


def script(table: str) -> list[str]:
    """Plain SQL that makes ``table`` and commits it, as someone outside kedro-dolt would."""
    wanted = [c for c in COLUMNS if c[0] in TABLES[table]]
    ddl = ", ".join(f"{name} {sql_type}" for name, sql_type, _, _ in wanted)
    rows = ", ".join("(" + ", ".join(column[2][i] for column in wanted) + ")" for i in range(3))
    return [
        f"CREATE TABLE {table} ({ddl}, PRIMARY KEY (id))",
        f"INSERT INTO {table} VALUES {rows}",
        f"CALL dolt_commit('-Am', 'made {table} with plain SQL')",
    ]


def expected(table: str) -> pd.DataFrame:
    return pd.DataFrame({c[0]: pd.Series(c[3]) for c in COLUMNS if c[0] in TABLES[table]})


def local_repository(path: Path) -> Path:
    path.mkdir()
    dolt(path, "init")
    for table in TABLES:
        dolt(path, "sql", "-q", ";\n".join(script(table)) + ";")
    return path


def server_database(server: DoltServer) -> str:
    database = f"types{uuid.uuid4().hex[:10]}"
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {database}")
    with server.connect(database=database) as conn, conn.cursor() as cursor:
        for table in TABLES:
            for statement in script(table):
                cursor.execute(statement)
    return database


class Spy:
    """Counts the loads the (real) cache answered."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hits = 0
        original = LoadCache.get

        def get(cache: LoadCache, key: CacheKey, columns: list[str] | None = None) -> pa.Table:
            found = original(cache, key, columns)
            self.hits += found is not None
            return found

        monkeypatch.setattr(LoadCache, "get", get)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    known_versions.clear()
    return Spy(monkeypatch)


def assert_exact(frame: pd.DataFrame, want: pd.DataFrame, path: str) -> None:
    """The same values and dtypes; Decimals with the column's scale, bytes as bytes."""
    pd.testing.assert_frame_equal(frame, want, check_exact=True, obj=path)
    assert frame.equals(want), path
    assert frame.dtypes.equals(want.dtypes), path
    for name in want.columns:
        if want[name].dtype == object:
            shown = [repr(v) for v in frame[name]]
            assert shown == [repr(v) for v in want[name]], (path, name)


def cached_twice(dataset: DoltTableDataset, spy: Spy) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A load from Dolt (a miss, kept in the cache), then the same load from the cache."""
    hits = spy.hits
    read = dataset.load()
    assert spy.hits == hits, "the first load must read Dolt's rows"
    cached = dataset.load()
    assert spy.hits == hits + 1, "the second load must come from the cache"
    return read, cached


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_type_loads_the_same_on_every_path(
    table: str,
    tmp_path: Path,
    shared_server: DoltServer,
    spy: Spy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = local_repository(tmp_path / "warehouse")
    database = server_database(shared_server)
    want = expected(table)
    loads: dict[str, pd.DataFrame] = {}

    # (a) the CLI engine, outside a run
    loads["cli"] = DoltTableDataset(database=str(repo), table=table).load()

    # (b) the run's own server (a Kedro run), then (d) the load cache
    monkeypatch.setenv(load_cache.DIR_ENV, str(tmp_path / "cache-served"))
    with RunServers.open():
        served = DoltTableDataset(database=str(repo), table=table)
        assert served.engine.transport.server() is not None  # type: ignore[attr-defined]
        loads["served"], loads["served, cached"] = cached_twice(served, spy)

    # (c) the server engine, then (d) the load cache; and with the cache off
    monkeypatch.setenv(load_cache.DIR_ENV, str(tmp_path / "cache-server"))
    server = DoltTableDataset(
        database=database, table=table, credentials={"con": shared_server.url()}
    )
    loads["server"], loads["server, cached"] = cached_twice(server, spy)
    monkeypatch.setenv(load_cache.SIZE_ENV, "0")
    loads["server, no cache"] = server.load()

    for path, frame in loads.items():
        assert_exact(frame, want, path)


SPATIAL = [
    "CREATE TABLE g (id INT PRIMARY KEY, name VARCHAR(10), p POINT, shape GEOMETRY)",
    "INSERT INTO g VALUES (1, 'a', POINT(1, 2), ST_GeomFromText('LINESTRING(0 0, 1 1)')), "
    "(2, 'b', NULL, NULL)",
    "CALL dolt_commit('-Am', 'spatial')",
]


@pytest.mark.parametrize("engine", ["cli", "served", "server"])
def test_spatial_columns_are_refused_with_the_fix(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if engine == "server":
        server: DoltServer = request.getfixturevalue("shared_server")
        database = f"geo{uuid.uuid4().hex[:10]}"
        with server.connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {database}")
        with server.connect(database=database) as conn, conn.cursor() as cursor:
            for statement in SPATIAL:
                cursor.execute(statement)
        args: dict[str, Any] = {"database": database, "credentials": {"con": server.url()}}
    else:
        repo = tmp_path / "warehouse"
        repo.mkdir()
        dolt(repo, "init")
        dolt(repo, "sql", "-q", ";\n".join(SPATIAL) + ";")
        args = {"database": str(repo)}
        if engine == "served":
            request.getfixturevalue("run_servers")

    with pytest.raises(DatasetError) as refused:
        DoltTableDataset(**args, table="g").load()
    message = str(refused.value)
    assert "Column 'p' has the spatial type POINT" in message
    assert "DoltSQLQueryDataset" in message and "ST_AsText(`p`) AS `p`" in message
    assert "load_args.columns" in message

    # Both ways out that the message gives work.
    kept = DoltTableDataset(**args, table="g", load_args={"columns": ["id", "name"]}).load()
    assert kept.to_dict("list") == {"id": [1, 2], "name": ["a", "b"]}
    query = DoltSQLQueryDataset(**args, sql="SELECT id, ST_AsText(p) AS p FROM g ORDER BY id")
    points = query.load()["p"]
    assert points[0] == "POINT(1 2)" and pd.isna(points[1])
