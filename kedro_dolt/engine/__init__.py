"""The engine: every call kedro-dolt makes to Dolt goes through this package.

``DoltEngine`` (:mod:`.protocol`) is the contract the datasets and strategies use. Its
operations are written once (:mod:`.sql_engine`, the SQL in :mod:`.sql`) and carried by a
transport (:mod:`.transport`): ``DoltCLIEngine`` runs the ``dolt`` binary on a local repository
(the embedded default, :mod:`.process`); ``DoltServerEngine`` talks MySQL to a
``dolt sql-server`` (:mod:`.connection`), chosen by Kedro credentials. Everything only the
engine uses lives here too: schemas and the row codec, fingerprints, scratch branches, locks,
the SQL policy of query datasets. docs/architecture.md draws the whole.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import DoltError
from .commits import CommitMessage
from .engines import DoltCLIEngine, DoltServerEngine
from .messages import dolt_summary, explain
from .mysql import ServerAddress
from .process import BINARY_ENV, DoltProcess, find_dolt_binary
from .protocol import SAVE_MODES, DoltEngine, Lineage, RemoteAuth
from .results import (
    CommitResult,
    DiffStat,
    LogEntry,
    MergeResult,
    QueryResult,
    RepositoryState,
    TableBase,
    TableRead,
)
from .retry import with_retries
from .schema import TableSchema
from .sql_engine import SQLEngine


def engine_for(
    database: str | os.PathLike[str], credentials: Mapping[str, Any] | None = None
) -> DoltEngine:
    """The engine of a dataset: the server engine when ``credentials`` hold ``con``
    (``database`` names a database there), else the CLI engine of the local repository at
    the path ``database``."""
    if credentials is not None and not isinstance(credentials, Mapping):
        raise DoltError(
            "Invalid credentials: a mapping is expected.",
            fix="give credentials: <name of an entry in conf/local/credentials.yml>, whose "
            "entry holds con: mysql://user:password@host:port.",
        )
    if credentials and credentials.get("con"):
        return DoltServerEngine(str(database), credentials=credentials)
    return DoltCLIEngine(database)


def is_server(credentials: Mapping[str, Any] | None) -> bool:
    """Whether ``credentials`` choose the server engine."""
    return isinstance(credentials, Mapping) and bool(credentials.get("con"))


__all__ = [
    "BINARY_ENV",
    "SAVE_MODES",
    "CommitMessage",
    "CommitResult",
    "DiffStat",
    "DoltCLIEngine",
    "DoltEngine",
    "DoltProcess",
    "DoltServerEngine",
    "Lineage",
    "LogEntry",
    "MergeResult",
    "QueryResult",
    "RemoteAuth",
    "RepositoryState",
    "SQLEngine",
    "ServerAddress",
    "TableBase",
    "TableRead",
    "TableSchema",
    "dolt_summary",
    "engine_for",
    "explain",
    "find_dolt_binary",
    "is_server",
    "with_retries",
]
