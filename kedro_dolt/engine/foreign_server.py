"""Servers someone else runs on a repository: a ``dolt sql-server`` the user started on it
(or on its parent directory of repositories), or another ``kedro run``'s. Dolt's own CLI goes
through such a server, so kedro-dolt does too (a ``dolt`` process would be routed through it
anyway, and lose its scripts' results on the way).
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from ..errors import DoltError
from .mysql import ServerAddress, connect
from .run_server import RunServer, alive

logger = logging.getLogger(__name__)

#: The user Dolt's CLI logs in as on a running server (its password is in sql-server.info).
LOCAL_USER = "__dolt_local_user__"


def foreign_server(repository: Path) -> RunServer | None:
    """The ``dolt sql-server`` running on ``repository`` (not the run's), from the
    ``.dolt/sql-server.info`` it writes (``pid:port:secret``), logged in as Dolt's own CLI
    does; ``None`` when none runs (a file left by a killed server names a dead pid). As Dolt's
    CLI, it looks in the repository and in its parent directory: a server on a directory of
    repositories (``data/`` holding ``wh`` and ``other``) serves ``wh`` as database ``wh``."""
    for owner, parent in ((repository, False), (repository.parent, True)):
        found = _server_of(repository, owner / ".dolt" / "sql-server.info", parent=parent)
        if found is not None:
            return found
    return None


def _server_of(repository: Path, info: Path, *, parent: bool) -> RunServer | None:
    try:
        pid, port, secret = info.read_text(encoding="utf-8").strip().split(":", 2)
        if not alive(int(pid)):
            return None
    except (OSError, ValueError):
        return None
    key = (str(info), pid, port)
    if key not in _foreign:
        _foreign[key] = _probe(repository, int(pid), int(port), secret, parent=parent)
    return _foreign[key]


def _probe(repository: Path, pid: int, port: int, secret: str, *, parent: bool) -> RunServer | None:
    """Log in to a foreign server and find ``repository``'s database on it; None (remembered
    for this server) when it does not answer in time or does not serve the repository."""
    address = ServerAddress("127.0.0.1", port, LOCAL_USER, secret)
    try:
        with (
            contextlib.closing(connect(address, timeout=PROBE_TIMEOUT)) as connection,
            connection.cursor() as cur,
        ):
            cur.execute("SHOW DATABASES")
            names = [str(row[0]) for row in cur.fetchall()]
    except DoltError as exc:
        logger.warning(
            "kedro-dolt: the dolt sql-server named in %s does not answer (%s); using the "
            "dolt process instead.",
            repository / ".dolt" / "sql-server.info",
            exc.what,
        )
        return None
    database = repository.name if parent and repository.name in names else None
    if not parent:
        database = _database_of(repository, names)
    if database is None:
        return None
    return RunServer(str(repository), "", port, database, secret, pid, LOCAL_USER)


_foreign: dict[tuple[str, str, str], RunServer | None] = {}
#: A foreign server that accepts connections but does not speak is given this long.
PROBE_TIMEOUT = 3.0


def _database_of(repository: Path, names: list[str]) -> str | None:
    """Which of a server's databases is ``repository``: its directory name, as Dolt makes
    a database name of it (``-`` and spaces become ``_``), or the only one."""
    wanted = {repository.name, re.sub(r"[-\s]", "_", repository.name)}
    for name in names:
        if name in wanted:
            return name
    user = [n for n in names if n not in ("information_schema", "mysql")]
    return user[0] if len(user) == 1 else None
