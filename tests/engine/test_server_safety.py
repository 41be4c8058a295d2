"""Issue 15, the server engine's part: restarts, passwords, a server killed mid-load, and
secrets that never reach an exception chain. Every server here is a real ``dolt sql-server``."""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset
from kedro_dolt.engine import ServerAddress
from tests.support.dolt_server import DoltServer

KEY = {"primary_key": "id"}


def frame(n: int = 5, tag: str = "x") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "s": pd.Series([f"{tag}{i}" for i in range(n)], dtype=object),
        }
    )


def dataset(server: DoltServer, user: str = "root", password: str = "", **kwargs: Any) -> Any:
    return DoltTableDataset(
        database="warehouse",
        table="t",
        credentials={"con": server.url(user, password)},
        save_args=KEY,
        **kwargs,
    )


def chain(error: BaseException) -> str:
    """What an exception and every exception chained to it (causes, contexts) say."""
    parts, pending, seen = [], [error], set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [
            str(current),
            repr(current.args),
            "".join(traceback.format_exception_only(current)),
        ]
        pending += [current.__cause__, current.__context__]
    return "\n".join(parts)


class TestRestart:
    """Item 9: pooled sessions of a server that restarted are replaced, not reported."""

    def test_load_and_save_after_a_restart(self, dolt_server_factory, tmp_path):
        server = dolt_server_factory(tmp_path / "data")
        data = dataset(server)
        data.save(frame())
        pd.testing.assert_frame_equal(data.load(), frame())  # pools a session per use
        server.stop()
        again = dolt_server_factory(tmp_path / "data", port=server.port)
        assert again.port == server.port
        pd.testing.assert_frame_equal(data.load(), frame())
        data.save(frame(7))
        pd.testing.assert_frame_equal(data.load(), frame(7))


class TestPasswords:
    """Items 10 and 13: any password a server accepts works, written plainly in ``con``."""

    @pytest.mark.parametrize(
        "password",
        ["pässwörd", "€uro", "s3cr/et", "a#b?c", "x@y", "Zm9v/YmFy+Kw==", "100%", ":colon:"],
    )
    def test_password_in_con_as_written(self, dolt_server_factory, tmp_path, password):
        server = dolt_server_factory(tmp_path / "data")
        server.create_user("kedro", password)
        plain = f"mysql://kedro:{password}@{server.host}:{server.port}"
        address = ServerAddress.from_con(plain)
        assert (address.user, address.password, address.port) == ("kedro", password, server.port)
        data = DoltTableDataset(
            database="warehouse", table="t", credentials={"con": plain}, save_args=KEY
        )
        data.save(frame())
        pd.testing.assert_frame_equal(data.load(), frame())
        # The percent-encoded form means the same password.
        pd.testing.assert_frame_equal(dataset(server, "kedro", password).load(), frame())

    def test_wrong_password_is_refused_clearly(self, dolt_server_factory, tmp_path):
        server = dolt_server_factory(tmp_path / "data")
        server.create_user("kedro", "pässwörd")
        with pytest.raises(DatasetError, match="check the user and password") as info:
            dataset(server, "kedro", "passwörd").save(frame())
        assert "passwörd" not in chain(info.value)

    @pytest.mark.parametrize(
        "con",
        [
            "mysql://kedro:s3cr/et@127.0.0.1:notaport",
            "mysql://kedro:s3cr#et@[::1:3306",
            "mysql://kedro:s3cr?et@:3306",
            "mysql://kedro:s3cr/et@127.0.0.1:99999999",
        ],
    )
    def test_a_broken_con_never_shows_its_password(self, con):
        with pytest.raises(DatasetError) as info:
            DoltTableDataset(database="w", table="t", credentials={"con": con})
        shown = chain(info.value)
        for part in ("s3cr", "et@"):
            assert part not in shown, shown


def big_frame(rows: int = 3_000_000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "s": pd.Series(["some text to send"] * rows, dtype=object),
        }
    )


def scratch_branches(server: DoltServer) -> list[tuple[Any, ...]]:
    return server.execute(
        "SELECT name FROM dolt_branches WHERE name LIKE 'kedro-dolt/%'", database="warehouse"
    )


@contextlib.contextmanager
def killed_during_load(server: DoltServer, kill: Any) -> Any:
    """Call ``kill(session id)`` as soon as the server runs a LOAD DATA statement."""
    stop, done = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            rows = server.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%'"
            )
            if rows:
                kill(rows[0][0])
                done.set()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    assert done.is_set(), "the load ended before it could be killed"


class TestKilledDuringLocalLoad:
    """Item 12: a server or session killed while a LOCAL load streams gives a clear error,
    and a scratch branch the failed save left is removed by the same process's next save."""

    def test_server_killed_mid_load(self, dolt_server_factory, tmp_path):
        server = dolt_server_factory(tmp_path / "data", local_infile=True)
        data = dataset(server)
        data.save(frame())
        kill = killed_during_load(server, lambda _: server.process.kill())
        with kill, pytest.raises(DatasetError) as info:
            data.save(big_frame())
        message = str(info.value)
        assert "NoneType" not in message and "sendall" not in message
        assert "lost" in message and "still runs" in message, message
        server.stop()
        dolt_server_factory(tmp_path / "data", local_infile=True, port=server.port)
        pd.testing.assert_frame_equal(data.load(), frame())  # nothing half-written
        data.save(frame(6))
        pd.testing.assert_frame_equal(data.load(), frame(6))

    def test_session_killed_mid_load_leaves_a_branch_the_next_save_removes(
        self, dolt_server_factory, tmp_path
    ):
        server = dolt_server_factory(tmp_path / "data", local_infile=True)
        data = dataset(server)
        data.save(frame())
        kill = killed_during_load(server, lambda session: server.execute(f"KILL {session}"))
        with kill, pytest.raises(DatasetError) as info:
            data.save(big_frame())
        assert "NoneType" not in str(info.value) and "Fix:" in str(info.value)
        assert scratch_branches(server), "the killed save left its scratch branch"
        data.save(frame(6))
        assert scratch_branches(server) == []
        pd.testing.assert_frame_equal(data.load(), frame(6))
