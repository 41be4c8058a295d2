"""Run a real ``dolt sql-server`` for tests of kedro-dolt's server mode.

A plain module (not a conftest): tests and fixtures import it. ``DoltServer.start`` picks a free
port on 127.0.0.1, writes a small yaml config into a private scratch directory (listener,
unix socket, optional ``local_infile`` and remotesapi port), starts the dolt binary
(``$KEDRO_DOLT_BINARY`` or ``dolt`` on PATH) with ``DOLT_DISABLE_EVENT_FLUSH=1`` and the
caller's ``DOLT_ROOT_PATH``, and returns once a PyMySQL connection succeeds. Every server is
stopped by ``stop()``, by leaving a ``with`` block, or by the ``dolt_server_factory`` fixture
at the end of the test, even when the test fails::

    with DoltServer.start(tmp_path / "data", local_infile=True) as srv:
        with srv.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE DATABASE warehouse")
        url = srv.url(database="warehouse")  # mysql://root:@127.0.0.1:PORT/warehouse

In a conftest: ``from tests.support.dolt_server import dolt_server_factory  # noqa: F401``, then a
test takes ``dolt_server_factory`` and calls it like ``DoltServer.start``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import pymysql
import pytest

__all__ = ["DoltServer", "DoltServerError", "dolt_server_factory", "dolt_servers", "free_port"]

HOST = "127.0.0.1"
#: Seconds to wait for a started server to accept a PyMySQL connection.
START_TIMEOUT = 30.0
#: Seconds a terminated server gets to shut down before it is killed.
STOP_TIMEOUT = 10.0
#: 1 GiB, the MySQL maximum: big multi-row INSERTs and LOAD DATA chunks must fit.
MAX_ALLOWED_PACKET = 1073741824
#: How many times a start is retried when the chosen port was taken in the meantime.
PORT_ATTEMPTS = 3


class DoltServerError(RuntimeError):
    """The server did not start (the message carries its log) or failed otherwise."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def dolt_binary() -> str:
    """The dolt executable, resolved the way kedro-dolt and the conftest resolve it."""
    binary = os.environ.get("KEDRO_DOLT_BINARY") or shutil.which("dolt")
    if not binary:
        raise DoltServerError("dolt is not on PATH and KEDRO_DOLT_BINARY is not set")
    return binary


def _yaml_str(value: str) -> str:
    """A yaml double-quoted scalar (JSON string syntax is valid yaml)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _sql_str(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class DoltServer:
    """One running ``dolt sql-server`` on 127.0.0.1, serving every database in ``data_dir``.

    Make one with :meth:`start`. Attributes: ``host``, ``port``, ``data_dir``, ``log_path``
    (the server's stdout and stderr), ``config_path``, ``remotesapi_port`` (``None`` unless
    asked for; clone/push URL ``http://127.0.0.1:{remotesapi_port}/{database}``) and
    ``process``.
    """

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        port: int,
        data_dir: Path,
        work_dir: Path,
        log_path: Path,
        log_file: IO[bytes],
        config_path: Path,
        remotesapi_port: int | None,
    ) -> None:
        self.host = HOST
        self.port = port
        self.data_dir = data_dir
        self.work_dir = work_dir
        self.log_path = log_path
        self.config_path = config_path
        self.remotesapi_port = remotesapi_port
        self.process = process
        self._log_file = log_file

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        local_infile: bool = False,
        remotesapi_port: int | None = None,
        env: Mapping[str, str] | None = None,
        system_variables: Mapping[str, int | str] | None = None,
        log_level: str = "info",
        timeout: float = START_TIMEOUT,
        port: int | None = None,
    ) -> DoltServer:
        """Start a server on a free port for the databases in ``data_dir`` (created if missing;
        it may itself be a Dolt repository, then served as a database named after it).

        ``local_infile`` sets the server variable so ``LOAD DATA LOCAL INFILE`` works (a stock
        server refuses it). ``remotesapi_port`` also serves the databases as an HTTP remote;
        pass ``0`` for a free port. ``env`` is laid over ``os.environ`` for the server
        (``DOLT_ROOT_PATH`` comes from there); ``DOLT_DISABLE_EVENT_FLUSH=1`` is always set.
        ``system_variables`` adds server variables to the config (``local_infile`` also pins
        ``max_allowed_packet`` to 1 GiB, Dolt 1.86's default anyway); without either, the
        server runs with stock variables. ``log_level="debug"`` logs every query received.
        ``port``: listen there (a restart of a stopped server) instead of on a free port.
        """
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        variables: dict[str, int | str] = {}
        if local_infile:
            variables.update(local_infile=1, max_allowed_packet=MAX_ALLOWED_PACKET)
        variables.update(system_variables or {})
        server_env = {**os.environ, **(env or {}), "DOLT_DISABLE_EVENT_FLUSH": "1"}
        if remotesapi_port == 0:
            remotesapi_port = free_port()

        errors: list[str] = []
        wanted = port
        for _ in range(1 if wanted else PORT_ATTEMPTS):
            port = wanted or free_port()
            # Short path under the system tmp dir: the unix socket path must stay < 108 bytes.
            work_dir = Path(tempfile.mkdtemp(prefix=f"dolt-srv-{port}-"))
            config_path = work_dir / "config.yaml"
            config_path.write_text(
                cls._config(
                    port, data_dir, work_dir / "mysql.sock", variables, remotesapi_port, log_level
                )
            )
            log_path = work_dir / "server.log"
            log_file = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
            process = subprocess.Popen(
                [dolt_binary(), "sql-server", "--config", str(config_path)],
                cwd=data_dir,
                env=server_env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest does not hit it mid-write
            )
            server = cls(
                process=process,
                port=port,
                data_dir=data_dir,
                work_dir=work_dir,
                log_path=log_path,
                log_file=log_file,
                config_path=config_path,
                remotesapi_port=remotesapi_port,
            )
            try:
                server._wait_ready(timeout)
            except DoltServerError as exc:
                server.stop()
                if "address already in use" not in server.log().lower():
                    raise
                errors.append(str(exc))  # lost a port race with another process: next port
                continue
            except BaseException:
                server.stop()
                raise
            return server
        raise DoltServerError("\n\n".join(errors))

    @staticmethod
    def _config(
        port: int,
        data_dir: Path,
        socket_path: Path,
        variables: Mapping[str, int | str],
        remotesapi_port: int | None,
        log_level: str,
    ) -> str:
        lines = [
            f"log_level: {log_level}",
            "behavior:",
            "  autocommit: true",
            "listener:",
            f"  host: {HOST}",
            f"  port: {port}",
            f"  socket: {_yaml_str(str(socket_path))}",
            f"data_dir: {_yaml_str(str(data_dir))}",
        ]
        if remotesapi_port is not None:
            lines += ["remotesapi:", f"  port: {remotesapi_port}"]
        if variables:
            lines.append("system_variables:")
            for name, value in variables.items():
                rendered = str(value) if isinstance(value, int) else _yaml_str(value)
                lines.append(f"  {name}: {rendered}")
        return "\n".join(lines) + "\n"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DoltServerError(
                    f"dolt sql-server exited with {self.process.returncode} before accepting "
                    f"connections on port {self.port}; log {self.log_path}:\n{self.log()}"
                )
            try:
                conn = pymysql.connect(
                    host=self.host, port=self.port, user="root", password="", connect_timeout=2
                )
            except pymysql.err.OperationalError as exc:
                last = exc
                time.sleep(0.1)
                continue
            conn.close()
            return
        raise DoltServerError(
            f"dolt sql-server did not accept connections on port {self.port} within "
            f"{timeout:.0f} s (last error: {last!r}); log {self.log_path}:\n{self.log()}"
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate the server (SIGTERM: a clean shutdown that removes
        ``.dolt/sql-server.info``), kill it after ``timeout`` seconds. Idempotent."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout)
        if not self._log_file.closed:
            self._log_file.close()

    def __enter__(self) -> DoltServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited {self.process.returncode}"
        return f"DoltServer({self.host}:{self.port}, data_dir={self.data_dir}, {state})"

    # -- use ---------------------------------------------------------------------------------

    def log(self) -> str:
        """The server's output so far."""
        if not self._log_file.closed:
            self._log_file.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def url(self, user: str = "root", password: str = "", database: str = "") -> str:
        """``mysql://user:password@127.0.0.1:port/database`` (parts percent-encoded; a
        revision database such as ``warehouse/feat`` keeps its slash)."""
        return (
            f"mysql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='/')}"
        )

    def connect(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        """A PyMySQL connection as ``root`` with autocommit on; ``kwargs`` override
        (``user``, ``password``, ``database``, ``local_infile``, ``cursorclass`` ...)."""
        options: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": "root",
            "password": "",
            "autocommit": True,
            "connect_timeout": 10,
            **kwargs,
        }
        return pymysql.connect(**options)

    def execute(self, *statements: str, **connect_kwargs: Any) -> list[tuple[Any, ...]]:
        """Run statements on a fresh root connection; the rows of the last one."""
        rows: list[tuple[Any, ...]] = []
        with self.connect(**connect_kwargs) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                rows = list(cur.fetchall())
        return rows

    def create_user(
        self,
        name: str,
        password: str,
        grants: str | None = "ALL PRIVILEGES ON *.* ",
        clone_admin: bool = False,
    ) -> None:
        """``CREATE USER name@'%'`` with ``password`` as root, then ``GRANT {grants}`` (skip
        with ``None`` or ``""``: a user with no privileges), plus ``CLONE_ADMIN`` when
        ``clone_admin`` (needed to clone/fetch/push through the remotesapi)."""
        account = f"{_sql_str(name)}@'%'"
        statements = [f"CREATE USER {account} IDENTIFIED BY {_sql_str(password)}"]
        if grants and grants.strip():
            statements.append(f"GRANT {grants.strip()} TO {account}")
        if clone_admin:
            statements.append(f"GRANT CLONE_ADMIN ON *.* TO {account}")
        self.execute(*statements)


@contextlib.contextmanager
def dolt_servers() -> Iterator[Callable[..., DoltServer]]:
    """A ``start`` with ``DoltServer.start``'s signature; every server it started is stopped
    when the block ends, whatever happened inside."""
    started: list[DoltServer] = []

    def start(data_dir: Path, **kwargs: Any) -> DoltServer:
        server = DoltServer.start(data_dir, **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def dolt_server_factory() -> Iterator[Callable[..., DoltServer]]:
    """Start real ``dolt sql-server`` processes in a test; all are stopped at teardown."""
    with dolt_servers() as start:
        yield start


def serve_directory(directory: Path) -> subprocess.Popen[bytes]:
    """A user's own ``dolt sql-server`` started in ``directory`` (a repository, or a
    directory of repositories), as ``cd DIR && dolt sql-server`` does, once it has written
    its ``.dolt/sql-server.info`` (how ``dolt`` and kedro-dolt find it). Stop it with
    SIGTERM."""
    process = subprocess.Popen(
        [dolt_binary(), "sql-server", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (directory / ".dolt" / "sql-server.info").exists():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise DoltServerError(f"dolt sql-server did not start in {directory}")
        time.sleep(0.05)
    time.sleep(0.2)  # the info file is written just before it accepts sessions
    return process
