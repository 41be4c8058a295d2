"""The engine: every call kedro-dolt makes to Dolt goes through this package.

``DoltEngine`` (:mod:`.protocol`) is the contract the datasets and strategies use. Its
operations are written once, as SQL scripts (:mod:`.statements`, :mod:`.operations`), and
carried by a transport: ``DoltCLIEngine`` runs the ``dolt`` binary on a local repository (the
embedded default, :mod:`.cli`); ``DoltServerEngine`` talks MySQL to a ``dolt sql-server``
(:mod:`.server`), chosen by Kedro credentials.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import DoltError
from .cli import BINARY_ENV, DoltCLIEngine, DoltProcess, find_dolt_binary
from .messages import dolt_summary, explain, with_retries
from .operations import SQLEngine, engine_at
from .protocol import SAVE_MODES, DoltEngine, Lineage
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
from .server import DoltServerEngine, ServerAddress


def engine_for(database: Any, credentials: Mapping[str, Any] | None = None) -> DoltEngine:
    """The engine a dataset uses: the server engine when ``credentials`` hold ``con``, else
    the CLI engine of the local repository ``database`` (relative to the project root)."""
    if credentials is not None and not isinstance(credentials, Mapping):
        raise DoltError(
            "Invalid credentials: a mapping is expected.",
            fix="give credentials: <name of an entry in conf/local/credentials.yml>, whose "
            "entry holds con: mysql://user:password@host:port.",
        )
    if credentials and credentials.get("con"):
        return DoltServerEngine(database, credentials=credentials)
    from ..context import resolve_database

    return DoltCLIEngine(resolve_database(database))


__all__ = [
    "BINARY_ENV",
    "SAVE_MODES",
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
    "RepositoryState",
    "SQLEngine",
    "ServerAddress",
    "TableBase",
    "TableRead",
    "dolt_summary",
    "engine_at",
    "engine_for",
    "explain",
    "find_dolt_binary",
    "with_retries",
]
