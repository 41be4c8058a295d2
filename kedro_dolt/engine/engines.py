"""The two engines: the same :class:`~.sql_engine.SQLEngine` over the ``dolt`` process (a
local repository) or over a MySQL connection to a ``dolt sql-server``."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import DoltError
from .connection import ServerConnection
from .local import LocalTransport
from .mysql import ServerAddress
from .process import DoltProcess
from .sql_engine import SQLEngine


class DoltCLIEngine(SQLEngine):
    """A local repository directory (the embedded default): the ``dolt`` command line, or
    during a Kedro run the run's own ``dolt sql-server`` (see :mod:`.run_server`).

    Cheap to build and picklable (it holds two strings); the binary is found at first use.
    """

    def __init__(self, database: str | os.PathLike[str], *, binary: str | None = None) -> None:
        self.database = Path(database).expanduser().absolute()
        self.process = DoltProcess(self.database, binary)
        super().__init__(LocalTransport(self.process))

    def __repr__(self) -> str:
        return f"DoltCLIEngine({str(self.database)!r})"

    @property
    def binary(self) -> str:
        return self.process.binary

    def version(self) -> str:
        """The binary's version, e.g. ``1.86.4`` (from ``dolt version``'s first line)."""
        # Run outside the database: it may not exist yet, and the version needs no repository.
        out = self.process.command(["version"], cwd=tempfile.gettempdir(), data_dir=False)
        first = out.decode("utf-8", "replace").strip().splitlines()[0]
        return first.removeprefix("dolt version").strip()


class DoltServerEngine(SQLEngine):
    """A database on a ``dolt sql-server`` (or Hosted Dolt), reached over MySQL.

    Built from Kedro credentials ``{con: mysql://user:password@host:port}`` (optional
    ``author: "Name <email>"`` for commits; default: the server's SQL user). Picklable: it
    holds the address, not connections.
    """

    def __init__(self, database: str, *, credentials: Mapping[str, Any]) -> None:
        if not isinstance(credentials, Mapping) or "con" not in credentials:
            raise DoltError(
                "Invalid credentials for the Dolt server: a mapping with `con` is expected.",
                fix="in conf/local/credentials.yml: dolt_server: {con: "
                "mysql://USER:PASSWORD@HOST:3306}; in the catalog: credentials: dolt_server.",
            )
        if not isinstance(database, str) or not re.fullmatch(r"[A-Za-z0-9_][\w-]*", database):
            raise DoltError(
                f"Invalid database name {database!r} for a Dolt server.",
                fix="with credentials, `database` names a database on the server (letters, "
                "digits, _ and -), e.g. database: warehouse.",
            )
        self.address = ServerAddress.from_con(credentials["con"])
        super().__init__(ServerConnection(self.address, database, credentials.get("author")))

    def __repr__(self) -> str:
        return f"DoltServerEngine({self.location!r})"
