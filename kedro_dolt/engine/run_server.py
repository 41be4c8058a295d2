"""One ``dolt sql-server`` per local repository for the length of a Kedro run.

Each ``dolt`` start costs 65-75 ms; a run makes a few per node. While a run lasts, kedro-dolt
serves each local repository it uses with a private ``dolt sql-server`` and talks to it over a
unix socket (:class:`~.local.LocalTransport`): an operation then costs a few milliseconds.
Facts this relies on (docs/dolt-facts.md, "A server for a run"):

* A ``dolt`` command of any other process (a plain ``dolt sql``, another kedro-dolt process)
  finds the running server through ``.dolt/sql-server.info`` and goes through it, so the
  repository stays readable and writable by others during the run.
* The server reads its users from a privileges file given in its config. kedro-dolt writes
  one in a private directory (``0700``) with ``dolt sql``: one user with a random password and
  no ``root``, so nobody else can use the server's TCP port. Nothing is written into the
  repository but Dolt's own ``.dolt/sql-server.info`` while the server runs.
* The server is started with ``PR_SET_PDEATHSIG``: a ``kill -9`` of the run kills it too, and
  Dolt ignores the stale ``sql-server.info`` it leaves. The signal follows the *thread* that
  started the server, so every server of a run is started by one thread that lives as long
  as the run (:class:`_Starter`).

The Kedro hook opens a :class:`RunServers` when a run starts and closes it when the run ends;
the repositories the pipeline uses start being served then, in the background, and one the
run creates from its first use.
Other processes of the run (ParallelRunner's workers) find the servers through the file named
in :data:`RUN_SERVERS_ENV`. ``KEDRO_DOLT_RUN_SERVER=0`` (or ``run_server: false`` in the
project's ``dolt.yml``) turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import DoltError
from .mysql import ServerAddress, connect
from .process import child_env, die_with_parent, pdeathsig_prefix

logger = logging.getLogger(__name__)

#: The file (JSON) that lists the servers of the current run, for every process of the run.
RUN_SERVERS_ENV = "KEDRO_DOLT_RUN_SERVERS"
#: ``0`` turns the servers off.
ENABLED_ENV = "KEDRO_DOLT_RUN_SERVER"
#: The run's private directory (config, privileges, socket): ``<prefix><pid>-<random>``.
DIR_PREFIX = "kedro-dolt-run-"
USER = "kedro_dolt_run"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
#: How long a closing run waits for other processes' statements on its servers to finish.
DRAIN_TIMEOUT = 120.0
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin


@dataclass(frozen=True)
class RunServer:
    """Where the server of one repository listens, and who may connect."""

    repository: str
    socket: str
    port: int
    database: str
    password: str = field(repr=False)
    pid: int = 0
    user: str = USER

    def address(self) -> ServerAddress:
        return ServerAddress(
            "127.0.0.1", self.port, self.user, self.password, unix_socket=self.socket or None
        )


_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def switch(value: object, *, setting: str) -> bool:
    """A setting that turns something on or off, parsed strictly: ``true``/``false``,
    ``1``/``0``, ``yes``/``no``, ``on``/``off`` (any case; YAML booleans and integers too);
    anything else is refused, so a typo never leaves the default silently in force."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    raise DoltError(
        f"{setting} is {value!r}, which is neither on nor off.",
        fix=f"set {setting} to true or false (also 1/0, yes/no, on/off).",
    )


def enabled() -> bool:
    return switch(os.environ.get(ENABLED_ENV, "1"), setting=ENABLED_ENV)


_published: tuple[str, float, dict[str, RunServer]] | None = None


def published(repository: Path) -> RunServer | None:
    """The server of ``repository`` in this run, if one was started (in any process)."""
    global _published
    path = os.environ.get(RUN_SERVERS_ENV)
    if not path:
        return None
    try:
        stamp = os.stat(path).st_mtime
    except OSError:
        return None
    if _published is None or _published[:2] != (path, stamp):
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
            servers = {key: RunServer(**value) for key, value in entries.items() if value}
        except (OSError, ValueError, TypeError):
            return None
        _published = (path, stamp, servers)
    return _published[2].get(str(repository))


class _Starter:
    """The one thread that starts a run's servers, alive until the run closes: the kernel
    kills a server when the thread that started it ends (``PR_SET_PDEATHSIG``), and a
    ThreadRunner worker or a background start ends long before the run. (Not a
    ThreadPoolExecutor: Python joins its thread at exit before ``atexit`` handlers run, so
    the servers would be killed before :meth:`RunServers.close` stops them cleanly.)"""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], Future[object]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], object]) -> Future[object]:
        """Run ``job`` on the starter's thread; its result (or exception) in the future."""
        done: Future[object] = Future()
        with self._lock:
            here = threading.current_thread() is self._thread or self._stopped
            if not here:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="kedro-dolt-run-servers", daemon=True
                    )
                    self._thread.start()
                self._jobs.put((job, done))
        if here:  # (once stopped, a job only learns that the run is closed)
            _settle(done, job)
        return done

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._thread is not None:
                self._jobs.put(None)

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done = item
            _settle(done, job)


def _settle(done: Future[object], job: Callable[[], object]) -> None:
    try:
        done.set_result(job())
    except BaseException as exc:  # handed to the thread that waits for it
        done.set_exception(exc)


class RunServers:
    """The servers of one run, owned by the process that opened it (the hook's)."""

    _open: RunServers | None = None  # the one open in this process, if any

    def __init__(self) -> None:
        self._owner = os.getpid()
        self._dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{self._owner}-"))
        os.chmod(self._dir, 0o700)
        self._file = self._dir / "servers.json"
        self._file.write_text("{}", encoding="utf-8")
        self._lock = threading.Lock()
        self._servers: dict[str, tuple[RunServer, subprocess.Popen[bytes]]] = {}
        self._password = secrets.token_urlsafe(24)
        self._privileges: Path | None = None
        self._failed: set[str] = set()
        self._closed = False
        self._starter = _Starter()
        self._extra_dirs: list[Path] = []  # short socket directories, removed at close

    # -- the run ------------------------------------------------------------------------

    @classmethod
    def open(cls) -> RunServers:
        """Start serving this process's run (nothing runs until a repository is used)."""
        if cls._open is not None:
            cls._open.close()
        _sweep()
        cls._open = cls()
        atexit.register(cls._open.close)
        os.environ[RUN_SERVERS_ENV] = str(cls._open._file)
        return cls._open

    @classmethod
    def current(cls) -> RunServers | None:
        """The servers this process opened (never a forked worker's copy)."""
        opened = cls._open
        return opened if opened is not None and opened._owner == os.getpid() else None

    def close(self) -> None:
        """Stop every server (they finish what they were doing) and forget the run."""
        atexit.unregister(self.close)
        if type(self)._open is self:
            type(self)._open = None
            if os.environ.get(RUN_SERVERS_ENV) == str(self._file):
                os.environ.pop(RUN_SERVERS_ENV, None)
        with self._lock:
            self._closed = True  # a background start after this starts nothing
            running = list(self._servers.values())
            self._servers.clear()
        for server, process in running:
            _drain(server, process)
            _stop(process)
        self._starter.stop()
        for path in [self._dir, *self._extra_dirs]:
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> RunServers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- serving a repository -----------------------------------------------------------

    def exclude(self, repository: Path) -> None:
        """Never serve ``repository`` in this run: its datasets pull or push with a remote
        password, which only reaches a ``dolt`` process (a server logs in with its own)."""
        with self._lock:
            self._failed.add(str(repository))
            self._publish()

    def serve(self, repository: Path, binary: str) -> RunServer | None:
        """The server of ``repository`` (an existing Dolt repository), started now if needed;
        ``None`` when it cannot be started or is excluded (operations then run ``dolt``)."""
        with self._lock:
            if str(repository) in self._servers:
                return self._servers[str(repository)][0]
        found = self._starter.submit(lambda: self._serve(repository, binary)).result()
        return found if isinstance(found, RunServer) else None

    def prepare(self, binary: str) -> None:
        """Write the run's privileges file in the background (a ``dolt`` start, ~60 ms), so
        that a repository the run creates is served sooner too."""
        self._starter.submit(functools.partial(self._privileges_file, binary))

    def serve_soon(self, repositories: Mapping[Path, str]) -> None:
        """Start the servers of ``repositories`` (path -> ``dolt`` binary) in the background;
        :meth:`serve` of one of them meanwhile waits for its start."""
        for repository, binary in repositories.items():
            self._starter.submit(functools.partial(self._serve, repository, binary))

    def _serve(self, repository: Path, binary: str) -> RunServer | None:
        """:meth:`serve`, on the starter's thread."""
        key = str(repository)
        with self._lock:
            if key in self._servers:
                return self._servers[key][0]
            if key in self._failed or self._closed:
                return None
            try:
                server, process = self._start(repository, binary)
            except (DoltError, OSError, subprocess.SubprocessError) as exc:
                self._failed.add(key)  # e.g. another server holds it: do without
                logger.warning(
                    "kedro-dolt: no dolt sql-server for %s in this run (%s); its operations "
                    "run the dolt process instead (slower, same results).",
                    repository,
                    " ".join(str(exc).split())[:300],
                )
                return None
            self._servers[key] = (server, process)
            self._publish()
            return server

    def _publish(self) -> None:
        entries: dict[str, dict[str, object] | None] = dict.fromkeys(self._failed)
        entries.update({key: asdict(server) for key, (server, _) in self._servers.items()})
        partial = self._file.with_suffix(".tmp")
        partial.write_text(json.dumps(entries), encoding="utf-8")
        os.chmod(partial, 0o600)
        os.replace(partial, self._file)

    def _start(self, repository: Path, binary: str) -> tuple[RunServer, subprocess.Popen[bytes]]:
        home = self._dir / f"server-{len(self._servers)}"
        home.mkdir()
        sock, port = self._socket_path(home), _free_port()
        config = home / "config.yaml"
        config.write_text(_config(repository, sock, port, self._privileges_file(binary), home))
        log = open(home / "server.log", "wb")  # noqa: SIM115 - the server writes it
        prefix = pdeathsig_prefix()
        process = subprocess.Popen(
            [*prefix, binary, "sql-server", "--config", str(config)],
            preexec_fn=None if prefix else die_with_parent,
            cwd=home,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the run reaches it through the hook
        )
        log.close()
        try:
            database = self._wait_ready(repository, process, sock, port, home / "server.log")
        except BaseException:
            _stop(process)
            raise
        server = RunServer(str(repository), str(sock), port, database, self._password, process.pid)
        return server, process

    def _socket_path(self, home: Path) -> Path:
        """The server's unix socket: in its home, or when that path is too long for a socket
        (108 bytes with the NUL; a long ``TMPDIR``), in a private directory under ``/tmp``."""
        sock = home / "mysql.sock"
        if len(os.fsencode(sock)) < _SOCKET_PATH_MAX:
            return sock
        short = Path(tempfile.mkdtemp(prefix=f"kd{self._owner}-", dir="/tmp"))
        os.chmod(short, 0o700)
        self._extra_dirs.append(short)
        return short / "s"

    def _privileges_file(self, binary: str) -> Path:
        """Users of every server of the run: one, with the run's random password."""
        if self._privileges is None:
            path = self._dir / "privileges.db"
            script = (
                f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{self._password}'; "
                f"GRANT ALL ON *.* TO '{USER}'@'%' WITH GRANT OPTION; "
                "DROP USER IF EXISTS 'root'@'localhost';"
            )
            subprocess.run(
                [binary, "--doltcfg-dir", str(self._dir), "--privilege-file", str(path), "sql"],
                input=script.encode(),
                cwd=self._dir,
                env=child_env(),
                capture_output=True,
                check=True,
            )
            self._privileges = path
        return self._privileges

    def _wait_ready(
        self, repository: Path, process: subprocess.Popen[bytes], sock: Path, port: int, log: Path
    ) -> str:
        """The name the server gives the repository's database, once it accepts sessions."""
        address = ServerAddress("127.0.0.1", port, USER, self._password, unix_socket=str(sock))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise DoltError(
                    "The run's dolt sql-server stopped at start.",
                    dolt_message=log.read_text(errors="replace")[-2000:],
                )
            try:
                connection = connect(address) if sock.exists() else None
            except DoltError:
                connection = None
            if connection is not None:
                with contextlib.closing(connection), connection.cursor() as cursor:
                    cursor.execute("SHOW DATABASES")
                    names = [str(row[0]) for row in cursor.fetchall()]
                return _served_database(repository, names)
            if time.monotonic() > deadline:
                raise DoltError("The run's dolt sql-server did not start in time.")
            time.sleep(0.005)


def _config(repository: Path, sock: Path, port: int, privileges: Path, home: Path) -> str:
    def quoted(path: Path) -> str:
        return json.dumps(str(path))  # a JSON string is a YAML string

    return "\n".join(
        [
            "log_level: warning",
            "behavior:",
            "  autocommit: true",
            "listener:",
            "  host: 127.0.0.1",
            f"  port: {port}",
            f"  socket: {quoted(sock)}",
            f"data_dir: {quoted(repository)}",
            f"cfg_dir: {quoted(home)}",
            f"privilege_file: {quoted(privileges)}",
            f"branch_control_file: {quoted(home / 'branch_control.db')}",
            "system_variables:",
            "  local_infile: 1",
            "",
        ]
    )


def _served_database(repository: Path, names: list[str]) -> str:
    """The database that is ``repository`` on a server whose data directory it is. Such a
    server also serves the repositories nested in it (``wh/archive``), and lists them in
    name order: the one served is the one Dolt names after the directory, never the first."""
    found = [n for n in names if n == repository.name]
    if len(found) != 1:
        raise DoltError(
            f"The run's dolt sql-server on {repository} lists no single database named "
            f"{repository.name!r} (it lists {sorted(names)}).",
            fix="this run uses the dolt process for it instead; nothing to do.",
        )
    return found[0]


def _sweep() -> None:
    """Remove the directories of runs whose process is gone (``kill -9`` leaves one; its
    servers died with it)."""
    for path in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        pid = path.name[len(DIR_PREFIX) :].split("-")[0]
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, a server dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError) as exc:
        return isinstance(exc, PermissionError)  # another user's runs
    try:
        with open(f"/proc/{pid}/stat", "rb") as status:
            return status.read().rpartition(b") ")[2][:1] != b"Z"
    except OSError:  # no /proc (macOS): as kill says
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_BUSY = (
    "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
    "WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Sleep', 'Daemon')"
)


def _drain(server: RunServer, process: subprocess.Popen[bytes]) -> None:
    """Wait (up to :data:`DRAIN_TIMEOUT`) until no other session is running a statement on
    the server: Dolt cancels statements in flight when it stops, and other processes (a
    ``dolt`` command of the user's, another run) go through it. Idle sessions are not
    waited for: their next statement finds the server gone and runs without it."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    try:
        with contextlib.closing(connect(server.address(), timeout=2.0)) as connection:
            while process.poll() is None and time.monotonic() < deadline:
                with connection.cursor() as cursor:
                    cursor.execute(_BUSY)
                    (busy,) = cursor.fetchone()
                if not busy:
                    return
                time.sleep(0.05)
    except (DoltError, OSError) as exc:  # it cannot be asked: stop it as before
        logger.debug("kedro-dolt: cannot ask the run's server for sessions (%s)", exc)
    except Exception as exc:  # a PyMySQL error on the way: the same
        logger.debug("kedro-dolt: cannot ask the run's server for sessions (%s)", exc)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server: SIGTERM lets it finish and remove ``sql-server.info``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


__all__ = ["RUN_SERVERS_ENV", "RunServer", "RunServers", "enabled", "published"]
