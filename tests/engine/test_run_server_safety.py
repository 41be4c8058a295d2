"""Safety of the run's own server and of servers the user runs (issue 25): the database
served is the repository the catalog names, a save through a user's server on a parent
directory reports what landed, other processes' statements finish before the run's server
stops, a server that dies mid-run or never speaks does not stop the run, settings are parsed
strictly, and a socket path that is too long still gets a server."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from kedro_dolt import DoltTableDataset
from kedro_dolt.engine import run_server
from kedro_dolt.engine.foreign_server import foreign_server
from kedro_dolt.engine.run_server import ENABLED_ENV, RunServers, switch
from kedro_dolt.errors import DoltError
from tests.conftest import dolt
from tests.support.dolt_server import serve_directory

FRAME = pd.DataFrame({"id": [1, 2], "x": [0.5, 1.5]})


def dataset(repo: Path, table: str) -> DoltTableDataset:
    return DoltTableDataset(database=str(repo), table=table, save_args={"primary_key": "id"})


def make_repo(path: Path, value: int) -> Path:
    path.mkdir(parents=True)
    dolt(path, "init")
    dolt(
        path,
        "sql",
        "-q",
        f"CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, {value}); "
        "CALL DOLT_COMMIT('-Am', 't');",
    )
    return path


def test_a_nested_repository_is_never_the_one_served(tmp_path, run_servers):
    # wh holds another repository (wh/archive); a server on wh serves both, and lists
    # archive first.
    wh = make_repo(tmp_path / "wh", 1)
    make_repo(wh / "archive", 99)
    assert dataset(wh, "t").load()["v"].tolist() == [1]
    [(server, _)] = run_servers._servers.values()
    assert server.database == "wh"
    dataset(wh, "u").save(FRAME)
    assert "u" in dolt(wh, "ls") and "u" not in dolt(wh / "archive", "ls")


def test_saves_leave_no_doltcfg_that_breaks_a_nested_repository(tmp_path):
    wh = make_repo(tmp_path / "wh", 1)
    make_repo(wh / "archive", 99)
    dataset(wh, "u").save(FRAME)  # the dolt process, outside a run
    assert not (wh / ".doltcfg").exists()
    assert "99" in dolt(wh / "archive", "sql", "-q", "SELECT v FROM t")


@pytest.fixture
def parent_server(tmp_path: Path):
    """The user's ``dolt sql-server`` on ``data/``, a directory holding ``wh`` and ``other``."""
    data = tmp_path / "data"
    make_repo(data / "wh", 1)
    make_repo(data / "other", 2)
    process = serve_directory(data)
    yield data
    process.send_signal(signal.SIGTERM)
    process.wait(20)


def test_saves_through_a_users_server_on_a_parent_directory_report_what_landed(parent_server):
    wh = parent_server / "wh"
    found = foreign_server(wh)
    assert found is not None and found.database == "wh"
    for rows in (FRAME, FRAME.assign(x=[9.0, 9.5]), FRAME.assign(x=[7.0, 7.5])):
        dataset(wh, "u").save(rows)  # raised "list index out of range" before
        pd.testing.assert_frame_equal(dataset(wh, "u").load(), rows)
    log = dolt(wh, "log", "--oneline")
    assert log.count("kedro: save u") == 3
    assert "u" not in dolt(parent_server / "other", "ls")


def test_another_process_statement_finishes_before_the_run_server_stops(tmp_path):
    wh = make_repo(tmp_path / "wh", 1)
    servers = RunServers.open()
    dataset(wh, "t").load()  # the run's server now serves wh
    result: dict[str, subprocess.CompletedProcess[str]] = {}

    def slow_query() -> None:
        # Another process's statement, routed through the run's server as `dolt` does.
        result["done"] = subprocess.run(
            ["dolt", "sql", "-r", "csv", "-q", "SELECT SLEEP(2) AS s, COUNT(*) AS n FROM t"],
            cwd=wh,
            capture_output=True,
            text=True,
            check=False,
        )

    other = threading.Thread(target=slow_query)
    other.start()
    time.sleep(0.8)  # the query is running on the run's server now
    servers.close()
    other.join(30)
    done = result["done"]
    assert done.returncode == 0, done.stderr  # "Lost connection ... during query" before
    assert done.stdout.strip().splitlines()[-1] == "0,1"


def test_a_run_server_that_dies_between_nodes_does_not_stop_the_run(tmp_path, caplog):
    wh = make_repo(tmp_path / "wh", 1)
    with RunServers.open() as servers:
        dataset(wh, "u").save(FRAME)
        [(_, process)] = servers._servers.values()
        process.kill()  # the OOM killer
        process.wait()
        with caplog.at_level(logging.WARNING, logger="kedro_dolt"):
            dataset(wh, "u").save(FRAME.assign(x=[3.0, 4.0]))
        assert "has stopped; the run goes on with the dolt process" in caplog.text
        pd.testing.assert_frame_equal(dataset(wh, "u").load(), FRAME.assign(x=[3.0, 4.0]))


def test_a_server_that_accepts_but_never_speaks_does_not_hang(tmp_path):
    wh = make_repo(tmp_path / "wh", 1)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel completes the connection) but never answers
    port = silent.getsockname()[1]
    sleeper = subprocess.Popen(["sleep", "60"])  # a live pid for the info file
    try:
        (wh / ".dolt" / "sql-server.info").write_text(f"{sleeper.pid}:{port}:secret")
        started = time.monotonic()
        loaded = dataset(wh, "t").load()
        assert time.monotonic() - started < 20
        assert loaded["v"].tolist() == [1]
    finally:
        sleeper.kill()
        sleeper.wait()
        silent.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, False), ("0", False), ("off", False), ("No", False), (False, False), (1, True)],
)
def test_on_off_settings_are_parsed_strictly(value, expected):
    assert switch(value, setting="run_server") is expected


@pytest.mark.parametrize("value", ["2", "disabled", "", "nope"])
def test_anything_else_is_refused(value, monkeypatch):
    with pytest.raises(DoltError, match="neither on nor off"):
        switch(value, setting="run_server")
    monkeypatch.setenv(ENABLED_ENV, value)
    with pytest.raises(DoltError, match=ENABLED_ENV):
        run_server.enabled()


def test_a_long_socket_path_still_gets_a_server(tmp_path, monkeypatch):
    long_tmp = tmp_path / ("t" * 90)
    long_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(long_tmp))
    monkeypatch.setattr("tempfile.tempdir", None)
    wh = make_repo(tmp_path / "wh", 1)
    with RunServers.open() as servers:
        assert dataset(wh, "t").load()["v"].tolist() == [1]
        [(server, _)] = servers._servers.values()
        assert len(os.fsencode(server.socket)) < 108
        assert str(long_tmp) in str(servers._dir)


def test_which_dolt_commands_work_while_a_run_serves_the_repository(tmp_path, run_servers):
    """What README Guarantees promise while a run goes on (Dolt refuses checkout, merge, pull
    and rebase while any local server runs; the rest goes through the run's server)."""
    wh = make_repo(tmp_path / "wh", 1)
    dataset(wh, "t").load()  # now served
    assert run_servers._servers
    for args in (
        ["sql", "-q", "INSERT INTO t VALUES (2, 2)"],
        ["add", "."],
        ["commit", "-m", "by hand during a run"],
        ["branch", "feature"],
        ["tag", "v1"],
        ["status"],
        ["diff"],
    ):
        dolt(wh, *args)  # raises if it fails
    assert "by hand during a run" in dolt(wh, "log", "-n", "1")
    refused = subprocess.run(
        ["dolt", "checkout", "feature"], cwd=wh, capture_output=True, text=True, check=False
    )
    assert "can not currently be used when there is a local server running" in (
        refused.stdout + refused.stderr
    )
    assert dataset(wh, "t").load()["v"].tolist() == [1, 2]


SECOND_RUN = """
import sys
import pandas as pd
from kedro_dolt import DoltTableDataset
from kedro_dolt.engine.run_server import RunServers

servers = RunServers.open()
data = DoltTableDataset(database=sys.argv[1], table="u", save_args={"primary_key": "id"})
data.save(pd.DataFrame({"id": [1], "x": [1.0]}))
print("ready", flush=True)
sys.stdin.readline()  # the first run ends meanwhile
data.save(pd.DataFrame({"id": [1], "x": [2.0]}))
print("saved", data.load()["x"].tolist(), flush=True)
servers.close()
"""


def test_a_second_run_on_the_repository_outlives_the_first(tmp_path):
    wh = make_repo(tmp_path / "wh", 1)
    first = RunServers.open()
    dataset(wh, "t").load()  # the first run serves wh
    second = subprocess.Popen(
        [sys.executable, "-c", SECOND_RUN, str(wh)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert second.stdout is not None and second.stdin is not None
    assert second.stdout.readline().strip() == "ready"
    first.close()  # its server stops
    out, err = second.communicate("go\n", timeout=120)
    assert second.returncode == 0, err
    assert "saved [2.0]" in out  # "The Dolt server refused or lost the session" before


def test_a_server_that_stops_under_a_statement_is_waited_for_then_done_without(
    tmp_path, run_servers, monkeypatch
):
    """The moment a server stops (another run's, at its end), it refuses new sessions while
    its process is still there: the statement waits until it is gone and then runs on the
    dolt process. (The refusal is a moment too short to hit for real: it is injected, and
    the server really stops meanwhile.)"""
    from kedro_dolt.engine.connection import ServerConnection
    from kedro_dolt.engine.mysql import ServerUnreachable

    wh = make_repo(tmp_path / "wh", 1)
    dataset(wh, "t").load()
    [(_, process)] = run_servers._servers.values()
    real_run = ServerConnection.run
    calls = []

    def stopping(self, *args, **kwargs):
        if not calls:
            calls.append(1)
            threading.Timer(0.5, process.terminate).start()  # it goes away meanwhile
            raise ServerUnreachable("Cannot connect to the Dolt server (it is stopping).")
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(ServerConnection, "run", stopping)
    dataset(wh, "u").save(FRAME)  # raised "Cannot connect" before
    assert calls == [1]
    process.wait(10)
    assert "kedro: save u" in dolt(wh, "log", "-n", "1")
