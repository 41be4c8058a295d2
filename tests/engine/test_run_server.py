"""A Kedro run's own ``dolt sql-server`` per local repository (issue 18): what it promises.

Everything a run does through it is also run by the ``served`` engine kind of the dataset
suites (see ``SERVED_TOO`` in the conftest); these tests are about the server itself: who can
reach it, what it leaves behind, and that the repository stays everyone's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pymysql
import pytest

from kedro_dolt import DoltTableDataset
from kedro_dolt.engine import DoltCLIEngine
from kedro_dolt.engine.run_server import ENABLED_ENV, RUN_SERVERS_ENV, RunServers
from tests.conftest import dolt, dolt_rows

FRAME = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]})


def dataset(repo: Path, table: str = "t") -> DoltTableDataset:
    return DoltTableDataset(database=str(repo), table=table, save_args={"primary_key": "id"})


def served(servers: RunServers) -> dict[str, int]:
    """The repositories being served, and their server's pid."""
    return {key: process.pid for key, (_, process) in servers._servers.items()}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as status:
            return status.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A repository holding table t (made by kedro-dolt, before any server)."""
    repo = tmp_path / "warehouse"
    dataset(repo).save(FRAME)
    return repo


class TestServing:
    def test_a_run_serves_each_repository_from_its_first_use(self, warehouse, run_servers):
        assert served(run_servers) == {}
        pd.testing.assert_frame_equal(dataset(warehouse).load(), FRAME)
        (pid,) = served(run_servers).values()
        assert alive(pid)
        assert (warehouse / ".dolt" / "sql-server.info").exists()
        dataset(warehouse, "u").save(FRAME)  # the same server, a new table
        assert list(served(run_servers).values()) == [pid]
        assert "kedro: save u" in dolt(warehouse, "log", "-n", "1")

    def test_a_server_first_used_by_a_thread_outlives_it(self, warehouse, run_servers):
        # The kernel kills a server when the thread that started it ends (PR_SET_PDEATHSIG
        # follows the thread): a ThreadRunner worker's first load must not start it.
        worker = threading.Thread(target=lambda: dataset(warehouse).load())
        worker.start()
        worker.join()
        (pid,) = served(run_servers).values()
        time.sleep(0.5)
        assert alive(pid)
        pd.testing.assert_frame_equal(dataset(warehouse).load(), FRAME)
        dataset(warehouse, "u").save(FRAME)
        assert served(run_servers) == {str(warehouse): pid}

    def test_serving_soon_starts_it_in_the_background(self, warehouse, run_servers):
        engine = DoltCLIEngine(warehouse)
        run_servers.serve_soon({engine.database: engine.binary})
        assert wait_until(lambda: bool(served(run_servers)))
        (pid,) = served(run_servers).values()
        time.sleep(0.5)
        assert alive(pid)
        pd.testing.assert_frame_equal(dataset(warehouse).load(), FRAME)
        assert served(run_servers) == {str(warehouse): pid}

    def test_preparing_writes_the_users_before_a_new_repository_needs_them(
        self, tmp_path, run_servers
    ):
        run_servers.prepare(DoltCLIEngine(tmp_path / "new").binary)
        assert wait_until(lambda: (run_servers._dir / "privileges.db").exists())
        dataset(tmp_path / "new").save(FRAME)  # the run creates it, then serves it
        assert list(served(run_servers)) == [str(tmp_path / "new")]
        pd.testing.assert_frame_equal(dataset(tmp_path / "new").load(), FRAME)

    def test_a_background_start_after_closing_starts_nothing(self, warehouse):
        servers = RunServers.open()
        servers.close()
        engine = DoltCLIEngine(warehouse)
        servers.serve_soon({engine.database: engine.binary})
        assert servers.serve(engine.database, engine.binary) is None
        assert served(servers) == {}
        assert not (warehouse / ".dolt" / "sql-server.info").exists()

    def test_closing_stops_it_and_leaves_the_repository_as_it_was(self, warehouse):
        before = sorted(os.listdir(warehouse))
        with RunServers.open() as servers:
            dataset(warehouse).save(FRAME.assign(x=9.0))
            (pid,) = served(servers).values()
            run_dir = servers._dir
        assert not alive(pid)
        assert not (warehouse / ".dolt" / "sql-server.info").exists()
        assert sorted(os.listdir(warehouse)) == before
        assert not run_dir.exists()
        assert RUN_SERVERS_ENV not in os.environ
        assert dolt_rows(warehouse, "SELECT SUM(x) AS s FROM t") == [{"s": 27.0}]

    def test_other_processes_read_and_write_the_repository_meanwhile(self, warehouse, run_servers):
        dataset(warehouse).load()  # now served
        dolt(
            warehouse,
            "sql",
            "-q",
            "INSERT INTO t VALUES (4, 4.5); CALL dolt_commit('-am', 'by hand');",
        )
        assert dataset(warehouse).load()["id"].tolist() == [1, 2, 3, 4]
        env = {k: v for k, v in os.environ.items() if k != RUN_SERVERS_ENV}
        script = textwrap.dedent(
            f"""
            import pandas as pd
            from kedro_dolt import DoltTableDataset
            DoltTableDataset(database={str(warehouse)!r}, table="other").save(
                pd.DataFrame({{"a": [1, 2]}})
            )
            """
        )
        subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
        assert len(DoltTableDataset(database=str(warehouse), table="other").load()) == 2
        dataset(warehouse).save(FRAME)
        log = dolt(warehouse, "log", "--oneline", "-n", "4")
        assert "by hand" in log and "kedro: save other" in log and "kedro: save t" in log

    def test_only_the_run_can_log_in(self, warehouse, run_servers):
        dataset(warehouse).load()
        (server,) = [s for s, _ in run_servers._servers.values()]
        with pytest.raises(pymysql.err.OperationalError, match=r"denied|Access"):
            pymysql.connect(host="127.0.0.1", port=server.port, user="root", password="")
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(
                host="127.0.0.1", port=server.port, user=server.address().user, password="x"
            )
        assert server.password not in repr(server)
        listing = Path(os.environ[RUN_SERVERS_ENV])
        assert stat.S_IMODE(listing.stat().st_mode) == 0o600
        assert stat.S_IMODE(listing.parent.stat().st_mode) == 0o700

    def test_workers_find_the_servers_the_run_published(self, warehouse, run_servers):
        """As ParallelRunner's workers: another process of the run uses the same server."""
        run_servers.serve(warehouse.absolute(), DoltCLIEngine(warehouse).binary)
        (pid,) = served(run_servers).values()
        script = textwrap.dedent(
            f"""
            from kedro_dolt.engine import DoltCLIEngine
            engine = DoltCLIEngine({str(warehouse)!r})
            assert engine.transport.server() is not None
            print(len(engine.read_table("t", ref="HEAD").frame))
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "3"
        assert list(served(run_servers).values()) == [pid]


class TestWithoutAServer:
    def test_turned_off(self, warehouse, run_servers, monkeypatch):
        monkeypatch.setenv(ENABLED_ENV, "0")
        pd.testing.assert_frame_equal(dataset(warehouse).load(), FRAME)
        assert served(run_servers) == {}

    def test_an_excluded_repository_uses_the_dolt_process(self, warehouse, run_servers):
        run_servers.exclude(warehouse.absolute())
        dataset(warehouse).save(FRAME.assign(x=1.0))
        assert served(run_servers) == {}
        assert json.loads(Path(os.environ[RUN_SERVERS_ENV]).read_text()) == {
            str(warehouse.absolute()): None
        }

    def test_a_repository_another_server_holds_is_used_through_that_server(
        self, warehouse, run_servers, tmp_path
    ):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        other = subprocess.Popen(
            ["dolt", "sql-server", "--port", str(port), "--data-dir", str(warehouse)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_until(lambda: (warehouse / ".dolt" / "sql-server.info").exists())
            dataset(warehouse).save(FRAME.assign(x=7.0))
            assert served(run_servers) == {}
            assert dataset(warehouse).load()["x"].tolist() == [7.0] * 3
        finally:
            other.terminate()
            other.wait(30)


KILLED_RUN = """
import sys, time
import numpy as np, pandas as pd
from kedro_dolt import DoltTableDataset
from kedro_dolt.engine.run_server import RunServers
servers = RunServers.open()
repo, rows = sys.argv[1], int(sys.argv[2])
ds = DoltTableDataset(database=repo, table="t", save_args={"primary_key": "id"})
ds.load()
((_, process),) = servers._servers.values()
print(process.pid, servers._dir, flush=True)
frame = pd.DataFrame({"id": np.arange(rows), "x": np.arange(rows) * 0.5})
while True:
    ds.save(frame)
    frame = frame.assign(x=frame["x"] + 1)
    time.sleep(0.01)
"""


class TestKilledRun:
    @pytest.mark.parametrize("after", [0.3, 1.5])
    def test_kill_9_leaves_no_server_and_no_half_written_table(self, warehouse, after):
        run = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, str(warehouse), "30000"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert run.stdout is not None
        pid, run_dir = run.stdout.readline().split()
        time.sleep(after)
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert wait_until(lambda: not alive(int(pid)))
        # The repository is usable by anyone; the table is one whole version.
        # Every save writes x = id / 2 + k for one k: a whole version has one such k.
        (table,) = dolt_rows(
            warehouse, "SELECT COUNT(*) AS n, COUNT(DISTINCT x - id / 2) AS k FROM t"
        )
        assert (table["n"], table["k"]) in [(3, 3), (30000, 1)]
        assert "nothing to commit" in dolt(warehouse, "status")
        dolt(
            warehouse, "sql", "-q", "INSERT INTO t VALUES (-1, 0); CALL dolt_commit('-am', 'after')"
        )
        # A later run serves it again, and clears what the killed run left in /tmp.
        with RunServers.open() as servers:
            assert not Path(run_dir).exists()
            assert -1 in dataset(warehouse).load()["id"].tolist()
            assert served(servers)
