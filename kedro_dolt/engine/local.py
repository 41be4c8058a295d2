"""The transport of a local repository: the ``dolt`` process, or during a Kedro run the run's
own ``dolt sql-server`` over a unix socket (:mod:`.run_server`).

What names and holds the repository (its path, cache, ``dolt init``, ``dolt clone``, the
commit identity) is always the process's; only running statements moves to the server while
one serves the repository. Rows go to it by ``LOAD DATA LOCAL INFILE`` always, so that a value
is stored as the process stores it (``-0.0`` included).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from .connection import ServerConnection
from .foreign_server import foreign_server
from .mysql import ServerUnreachable
from .process import DoltProcess
from .run_server import RunServer, RunServers, alive, enabled, published
from .transport import Rows, Statement

logger = logging.getLogger(__name__)


_gone: set[tuple[str, int]] = set()  # servers found dead, each said once


def _running(server: RunServer) -> bool:
    """Whether ``server``'s process is still there; the first time it is not, a log line:
    what the server did is committed, the rest of the run uses the ``dolt`` process."""
    if not server.pid or alive(server.pid):
        return True
    if (server.repository, server.pid) not in _gone:
        _gone.add((server.repository, server.pid))
        logger.warning(
            "kedro-dolt: the dolt sql-server serving %s (pid %d) has stopped; the run goes "
            "on with the dolt process for it.",
            server.repository,
            server.pid,
        )
    return False


class LocalTransport:
    """A local repository, reached by the ``dolt`` process or by the run's server."""

    @property
    def keeps_negative_zero(self) -> bool:
        server = self.server()
        return True if server is None else server.keeps_negative_zero

    @property
    def cheap_round_trips(self) -> bool:
        return self.server() is not None

    def __init__(self, process: DoltProcess) -> None:
        self.process = process
        self._connection: tuple[RunServer, ServerConnection] | None = None

    # -- what stays the process's ---------------------------------------------------------

    @property
    def location(self) -> str:
        return self.process.location

    @property
    def cache_dir(self) -> Path:
        return self.process.cache_dir

    def exists(self) -> bool:
        return self.process.exists()

    def require(self) -> None:
        self.process.require()

    def ensure(self, initial_branch: str | None) -> None:
        self.process.ensure(initial_branch)

    def author(self) -> str | None:
        return self.process.author()

    def clone(
        self,
        url: str,
        *,
        remote: str,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.process.clone(url, remote=remote, user=user, env=env)

    # -- running statements ---------------------------------------------------------------

    def server(self) -> ServerConnection | None:
        """A connection to the server that serves this repository now, if any: the run's
        (started by the process that owns the run, at the repository's first use), or any
        other ``dolt sql-server`` running on it (a ``dolt`` process would be routed through
        that one anyway, and loses its scripts' results on the way)."""
        found = self._run_server()
        if found is None:
            found = foreign_server(self.process.database)
        if found is not None and not _running(found):
            found = None  # it died (the OOM killer, the end of the run that owned it)
        if found is None:
            self._connection = None
            return None
        if self._connection is None or self._connection[0] != found:
            connection = ServerConnection(
                found.address(), found.database, self.process.author(), local_infile_rows=1
            )
            self._connection = (found, connection)
        return self._connection[1]

    def _run_server(self) -> RunServer | None:
        if not enabled():
            return None
        found = published(self.process.database)
        if found is None:
            servers = RunServers.current()
            if servers is None or not self.process.exists():
                return None
            found = servers.serve(self.process.database, self.process.binary)
        return found  # None: not served (excluded, or it could not start)

    def lock(self, *, exclusive: bool) -> AbstractContextManager[None]:
        # The server orders writers itself; the file lock is for dolt processes.
        if self.server() is not None:
            return contextlib.nullcontext()
        return self.process.lock(exclusive=exclusive)

    def run(
        self,
        statements: Sequence[Statement],
        *,
        branch: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        if not env:  # a remote's password only reaches the process
            served, rows = self._served(lambda s: s.run(statements, branch=branch))
            if served:
                return cast(list[Rows], rows)
        return self.process.run(statements, branch=branch, env=env)

    def run_arrow(self, statements: Sequence[str], *, branch: str | None = None) -> list[pa.Table]:
        served, tables = self._served(lambda s: s.run_arrow(statements, branch=branch))
        if served:
            return cast(list[pa.Table], tables)
        return self.process.run_arrow(statements, branch=branch)

    def run_read(
        self, statements: Sequence[str], rows_at: Callable[[str | None], str], *, branch: str | None
    ) -> list[pa.Table]:
        served, tables = self._served(lambda s: s.run_read(statements, rows_at, branch=branch))
        if served:
            return cast(list[pa.Table], tables)
        return self.process.run_read(statements, rows_at, branch=branch)

    def run_query(self, database: str, revision: str, statement: str) -> pa.Table | None:
        served, table = self._served(lambda s: s.run_query(database, revision, statement))
        if served:
            return cast("pa.Table | None", table)
        return self.process.run_query(database, revision, statement)

    def _served(self, call: Callable[[ServerConnection], Any]) -> tuple[bool, Any]:
        """``(True, call(server))`` on the server that serves the repository, or
        ``(False, None)`` when none does (then the ``dolt`` process runs it). A
        server that cannot be reached (it is stopping: another run's at its end, or it died)
        is waited for until it is gone, then the call goes to what serves the repository
        then (another server, or the ``dolt`` process): nothing was sent to the first."""
        server = self.server()
        if server is None:
            return False, None
        try:
            return True, call(server)
        except ServerUnreachable:
            gone = self._connection[0] if self._connection else None
            self._connection = None
            if gone is None or not _wait_gone(gone, self.process.database):
                raise
        server = self.server()
        return (False, None) if server is None else (True, call(server))


def _wait_gone(server: RunServer, repository: Path, timeout: float = 20.0) -> bool:
    """Whether ``server`` stops serving ``repository`` within ``timeout`` (its process ends,
    or it removes its ``sql-server.info``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(server):
            return True
        if foreign_server(repository) != server and published(repository) != server:
            return True  # it removed its sql-server.info: stopped
        time.sleep(0.05)
    return False
