"""The server engine against real ``dolt sql-server``s: credentials, errors, secrets, pickling,
both bulk paths, and many writers at once (issue 10). What both engines share is tested by the
``BOTH_ENGINES`` suites."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset
from kedro_dolt.engine import DoltServerEngine, ServerAddress, engine_for
from tests.support.dolt_server import DoltServer

PASSWORD = "s3cr3t-Pa55"
KEY = {"primary_key": "id"}


def frame(n: int = 5, tag: str = "x") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "s": pd.Series([f"{tag}{i}" if i % 3 else "NULL" for i in range(n)], dtype=object),
            "x": np.linspace(0.1, 1.0, n),
        }
    )


@pytest.fixture
def server(dolt_server_factory, tmp_path) -> DoltServer:
    """A server of its own with a password-protected user ``kedro``."""
    srv = dolt_server_factory(tmp_path / "data")
    srv.create_user("kedro", PASSWORD)
    return srv


def dataset(server: DoltServer, *, password: str = PASSWORD, **kwargs) -> DoltTableDataset:
    credentials = {"con": server.url("kedro", password)}
    return DoltTableDataset(
        database="warehouse", table="t", credentials=credentials, save_args=KEY, **kwargs
    )


class TestCredentials:
    @pytest.mark.parametrize(
        ("con", "expected"),
        [
            ("mysql://u:p%40ss@db.example:3307", ("db.example", 3307, "u", "p@ss")),
            ("mysql+pymysql://u@db.example", ("db.example", 3306, "u", "")),
            ("mysql://db.example:3306/ignored", ("db.example", 3306, "root", "")),
        ],
    )
    def test_con_urls(self, con, expected):
        address = ServerAddress.from_con(con)
        assert (address.host, address.port, address.user, address.password) == expected
        assert "p@ss" not in repr(address) and "p%40ss" not in address.url("db")

    @pytest.mark.parametrize(
        ("credentials", "message"),
        [
            ({"con": "postgresql://u:p@h:5432"}, "scheme 'postgresql'"),
            ({"con": "mysql://u:p@:3306"}, "names no host"),
            ({"con": "mysql://u:p@h:port"}, "port is not a number"),
            ({"con": 3306}, "must be a url"),
        ],
    )
    def test_bad_con_is_refused_when_the_catalog_is_built(self, credentials, message):
        with pytest.raises(DatasetError, match=message) as info:
            DoltTableDataset(database="warehouse", table="t", credentials=credentials)
        assert ":p@" not in str(info.value)

    def test_bad_database_name(self):
        with pytest.raises(DatasetError, match="Invalid database name"):
            engine_for("data/warehouse", {"con": "mysql://u:p@h:3306"})

    def test_without_con_the_local_engine_is_used(self, tmp_path):
        engine = engine_for(tmp_path / "wh", {"remote_password": "x"})
        assert type(engine).__name__ == "DoltCLIEngine"

    def test_password_never_shown(self, server, caplog):
        caplog.set_level(logging.DEBUG)
        data = dataset(server)
        data.save(frame())
        data.load()
        assert PASSWORD not in repr(data)
        assert PASSWORD not in str(data._describe())
        assert PASSWORD not in repr(data.engine)
        assert data._describe()["database"] == f"mysql://kedro@127.0.0.1:{server.port}/warehouse"
        assert PASSWORD not in caplog.text
        query = DoltSQLQueryDataset(
            database="warehouse",
            sql="SELECT 1 AS one",
            credentials={"con": server.url("kedro", PASSWORD)},
        )
        assert PASSWORD not in repr(query) and PASSWORD not in str(query._describe())


class TestErrors:
    def test_wrong_password(self, server):
        with pytest.raises(DatasetError) as info:
            dataset(server, password="wrong-guess").save(frame())
        message = str(info.value)
        assert "Cannot connect" in message and "user and password" in message
        assert "wrong-guess" not in message

    def test_unreachable_server(self, server):
        port = server.port
        server.stop()
        with pytest.raises(DatasetError) as info:
            dataset(server).load()
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message and "host and port" in message
        assert PASSWORD not in message

    def test_unknown_database_on_load(self, server):
        with pytest.raises(DatasetError, match="No database 'warehouse' on the Dolt server"):
            dataset(server).load()
        assert not dataset(server).exists()

    def test_missing_privilege(self, server):
        dataset(server).save(frame())
        server.create_user("reader", "r3ad", grants="SELECT ON *.* ")
        reader = DoltTableDataset(
            database="warehouse",
            table="t",
            credentials={"con": server.url("reader", "r3ad")},
            save_args=KEY,
        )
        pd.testing.assert_frame_equal(reader.load(), frame())
        with pytest.raises(DatasetError) as info:
            reader.save(frame(7))
        message = str(info.value)
        assert "grant the user 'reader'" in message and "r3ad" not in message
        pd.testing.assert_frame_equal(dataset(server).load(), frame())  # nothing changed


def _load_in_child(blob: bytes, queue: multiprocessing.Queue) -> None:  # runs in a child
    try:
        queue.put(len(pickle.loads(blob).load()))
    except Exception as exc:  # reported to the parent
        queue.put(repr(exc))


class TestProcesses:
    def test_pickled_dataset_loads_in_a_forked_worker(self, server):
        """As ParallelRunner: the dataset travels pickled; the worker opens its own
        connections (the parent's pooled ones are not shared across the fork)."""
        data = dataset(server)
        data.save(frame(9))
        data.load()  # the parent now holds pooled connections
        blob = pickle.dumps(data)
        queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
        child = multiprocessing.get_context("fork").Process(
            target=_load_in_child, args=(blob, queue)
        )
        child.start()
        child.join(60)
        assert queue.get(timeout=5) == 9
        assert len(data.load()) == 9  # and the parent's connections still work


class TestBulkPaths:
    @pytest.mark.parametrize("local_infile", [True, False])
    def test_rows_round_trip_exactly(self, dolt_server_factory, tmp_path, local_infile):
        """LOAD DATA LOCAL when the server allows it, batched INSERTs when not: the same
        table either way (text NULL, empty strings, missing values, floats, times)."""
        srv = dolt_server_factory(tmp_path / "data", local_infile=local_infile)
        rows = 120_000  # more than one INSERT batch
        wanted = pd.DataFrame(
            {
                "id": np.arange(rows, dtype="int64"),
                "s": pd.Series(["NULL", "", None, "tab\tand\\n"] * (rows // 4), dtype=object),
                "x": np.random.default_rng(7).random(rows),
                "t": pd.date_range("2026-01-01", periods=rows, freq="ms").astype("datetime64[ns]"),
                "n": pd.array([1, None] * (rows // 2), dtype="Int64"),
                "b": [True, False, True] * (rows // 3),
            }
        )
        engine = DoltServerEngine("warehouse", credentials={"con": srv.url()})
        assert engine.transport._uses_local_infile() is local_infile
        data = DoltTableDataset(
            database="warehouse", table="t", credentials={"con": srv.url()}, save_args=KEY
        )
        data.save(wanted)
        pd.testing.assert_frame_equal(data.load(), wanted)

    @pytest.mark.parametrize("local_infile", [True, False])
    def test_rows_dolt_cannot_store_fail_the_save(
        self, dolt_server_factory, tmp_path, local_infile
    ):
        """MySQL's LOAD DATA LOCAL only notes a duplicate key and stores the rest: here the
        save fails and changes nothing, as on the CLI."""
        srv = dolt_server_factory(tmp_path / "data", local_infile=local_infile)
        data = DoltTableDataset(
            database="warehouse", table="t", credentials={"con": srv.url()}, save_args=KEY
        )
        data.save(frame())
        duplicated = pd.concat([frame(), frame().head(1)], ignore_index=True)
        with pytest.raises(DatasetError, match="duplicate primary key"):
            data.save(duplicated)
        with pytest.raises(DatasetError, match="inf") as info:
            data.save(frame().assign(x=np.inf))
        assert "inf/-inf are not storable" in str(info.value)
        pd.testing.assert_frame_equal(data.load(), frame())


def _writer(con: str, table: str, writer: int, saves: int, errors: multiprocessing.Queue) -> None:
    """One machine's pipeline: ``saves`` saves of its own frames (runs in a child)."""
    try:
        for seq in range(saves):
            DoltTableDataset(
                database="warehouse",
                table=table,
                credentials={"con": con},
                save_args={**KEY, "commit_message": f"writer {writer} save {seq}"},
            ).save(writer_frame(writer, seq))
    except Exception as exc:  # reported to the parent
        errors.put(f"writer {writer}: {exc}")


def writer_frame(writer: int, seq: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": np.arange(10, dtype="int64"), "v": np.full(10, writer * 1000 + seq, dtype="int64")}
    )


class TestConcurrentWriters:
    """Several machines through one server: every save lands as its own commit."""

    def run_writers(self, server: DoltServer, tables: list[str], saves: int) -> None:
        DoltTableDataset(
            database="warehouse", table="seed", credentials={"con": server.url()}
        ).save(pd.DataFrame({"a": [1]}))  # the database exists before the race
        context = multiprocessing.get_context("fork")
        errors: multiprocessing.Queue = context.Queue()
        workers = [
            context.Process(target=_writer, args=(server.url(), table, n, saves, errors))
            for n, table in enumerate(tables)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(300)
        failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
        assert failures == []
        assert all(worker.exitcode == 0 for worker in workers)

    def commits(self, server: DoltServer) -> dict[str, str]:
        rows = server.execute(
            "SELECT message, commit_hash FROM dolt_log WHERE message LIKE 'writer %'",
            database="warehouse",
        )
        return {str(message).splitlines()[0]: str(commit) for message, commit in rows}

    def test_four_writers_one_table_and_branch(self, server):
        self.run_writers(server, ["shared"] * 4, saves=10)
        commits = self.commits(server)
        assert len(commits) == 40
        for writer in range(4):
            for seq in range(10):
                commit = commits[f"writer {writer} save {seq}"]
                # Each commit holds exactly its save: that frame, in that table only.
                stored = server.execute(
                    f"SELECT id, v FROM `shared` AS OF '{commit}' ORDER BY id", database="warehouse"
                )
                assert stored == [(i, writer * 1000 + seq) for i in range(10)]
                changed = server.execute(
                    f"SELECT table_name FROM dolt_diff WHERE commit_hash = '{commit}'",
                    database="warehouse",
                )
                assert {name for (name,) in changed} == {"shared"}

    def test_eight_writers_distinct_tables(self, server):
        tables = [f"t{n}" for n in range(8)]
        self.run_writers(server, tables, saves=3)
        commits = self.commits(server)
        assert len(commits) == 24
        for n, table in enumerate(tables):
            last = server.execute(f"SELECT DISTINCT v FROM {table}", database="warehouse")
            assert last == [(n * 1000 + 2,)]


class TestLocalInfileGuard:
    def test_the_client_sends_only_the_file_it_is_loading(self, dolt_server_factory, tmp_path):
        """A server may ask a LOCAL INFILE client for any file; kedro-dolt's connections
        answer only for the rows file of the load in progress."""
        from kedro_dolt.engine.mysql import connect

        srv = dolt_server_factory(tmp_path / "data", local_infile=True)
        srv.execute("CREATE DATABASE w", "CREATE TABLE w.t (line longtext)")
        secret = tmp_path / "secret.txt"
        secret.write_text("not for the server\n")
        connection = connect(ServerAddress.from_con(srv.url()), local_infile=True)
        try:
            with pytest.raises(Exception, match="which kedro-dolt is not loading"):
                connection.cursor().execute(f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE w.t")
        finally:
            connection.close()
        assert srv.execute("SELECT COUNT(*) FROM w.t") == [(0,)]
        allowed = connect(ServerAddress.from_con(srv.url()), local_infile=True)
        allowed.allowed_files = frozenset({str(secret)})  # what a load sets for its own file
        with allowed, allowed.cursor() as cursor:
            cursor.execute(f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE w.t")
        assert srv.execute("SELECT line FROM w.t") == [("not for the server",)]


class TestSessions:
    def test_idle_sessions_are_bounded(self, server):
        """A session is kept per database and branch; a process writing to many branches
        keeps at most MAX_IDLE of them open on the server."""
        from kedro_dolt.engine import mysql

        data = dataset(server)
        data.save(frame())
        for n in range(mysql.MAX_IDLE + 4):
            dataset(server, branch={"strategy": "new", "name": f"b{n}"}).save(frame(n + 6))
        held = server.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST")[0][0]
        idle = sum(map(len, mysql.POOL._idle.values()))
        assert idle <= mysql.MAX_IDLE
        assert held <= mysql.MAX_IDLE + 2  # and the query's own session


class TestStreamedLocalLoad:
    @pytest.mark.parametrize("bad_row", [5, 100_000])
    def test_rows_that_cannot_be_sent_leave_nothing(self, dolt_server_factory, tmp_path, bad_row):
        """A big load streams through a named pipe while PyMySQL sends it. Text that cannot
        be encoded (a lone surrogate) stops the writer at once or after 100k rows were sent:
        the save fails naming the row, nothing is committed, no pipe is left."""
        srv = dolt_server_factory(tmp_path / "data", local_infile=True)
        first = DoltTableDataset(database="warehouse", table="keep", credentials={"con": srv.url()})
        first.save(frame())
        before = srv.execute("SELECT name, hash FROM dolt_branches", database="warehouse")
        rows = 120_000
        text = pd.Series([f"r{i}" for i in range(rows)], dtype=object)
        text[bad_row] = "bad \udc80 text"
        data = DoltTableDataset(
            database="warehouse", table="big", credentials={"con": srv.url()}, save_args=KEY
        )
        with pytest.raises(DatasetError, match=f"row {bad_row}|index {bad_row}") as info:
            data.save(pd.DataFrame({"id": np.arange(rows, dtype="int64"), "s": text}))
        assert "nothing was changed" in str(info.value)
        after = srv.execute("SELECT name, hash FROM dolt_branches", database="warehouse")
        assert after == before  # no commit, no scratch branch left
        assert srv.execute("SHOW TABLES", database="warehouse") == [("keep",)]
        assert not list(Path(tempfile.gettempdir()).glob(f"kedro-dolt-{os.getpid()}-*"))
