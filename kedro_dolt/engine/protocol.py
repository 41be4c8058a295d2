"""The contract between the datasets and Dolt: what an engine does, whatever its transport."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from .commits import CommitMessage
from .results import (
    CommitResult,
    DiffStat,
    LogEntry,
    MergeResult,
    QueryResult,
    RepositoryState,
    TableRead,
)
from .schema import TableSchema

#: ``save_args.mode``: the frame becomes the table / its rows are inserted / inserted or
#: replaced by primary key.
SAVE_MODES = ("overwrite", "append", "upsert")
#: ``(lineage_table, row)`` to add in a save's commit, or ``None``.
Lineage = tuple[str, Mapping[str, Any]] | None


@dataclass(frozen=True)
class RemoteAuth:
    """Who a remote operation (clone, fetch, pull, push) logs in as: Dolt's ``--user`` plus
    ``DOLT_REMOTE_PASSWORD``. ``password`` ``None``: the transport cannot pass one (a server
    reads its own environment) or the environment already holds it. Never shown in a repr."""

    user: str
    password: str | None = field(default=None, repr=False)


class DoltEngine(Protocol):
    """What datasets and strategies need from Dolt. Implemented by each engine.

    ``location`` names the database for people and in run records (a path, or
    ``mysql://user@host:port/db`` without the password).
    """

    @property
    def location(self) -> str: ...

    def exists(self) -> bool: ...
    def ensure_repository(self, initial_branch: str | None = None) -> None: ...
    def author(self) -> str | None: ...
    def active_branch(self) -> str: ...
    def branch_exists(self, branch: str) -> bool: ...
    def state(self) -> RepositoryState: ...
    def resolve(self, ref: str, *, branch: str | None = None) -> str: ...
    def create_branch(self, branch: str, start_point: str, *, exist_ok: bool = False) -> None: ...
    def delete_branch(self, branch: str) -> None: ...
    def merge(
        self, source: str, into: str, *, message: CommitMessage | str, on_conflict: str
    ) -> MergeResult: ...
    def find_run_commit(self, run_id: str, *, table: str, branch: str | None) -> str | None: ...
    def remotes(self) -> dict[str, str]: ...
    def add_remote(self, name: str, url: str) -> None: ...
    def remove_remote(self, name: str) -> None: ...
    def clone(self, url: str, *, remote: str, auth: RemoteAuth | None = None) -> None: ...
    def pull(
        self, remote: str, branch: str, *, auth: RemoteAuth | None = None
    ) -> MergeResult | None: ...
    def push(self, remote: str, branch: str, *, auth: RemoteAuth | None = None) -> None: ...
    def tag(self, name: str, ref: str, message: str = "") -> None: ...
    def tags(self) -> dict[str, str]: ...
    def log(self, ref: str | None = None, limit: int | None = None) -> list[LogEntry]: ...
    def has_table(self, table: str, *, ref: str, branch: str | None = None) -> bool: ...
    def read_table(
        self,
        table: str,
        *,
        ref: str,
        branch: str | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> TableRead: ...
    def write_table(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        schema: TableSchema,
        branch: str | None,
        message: CommitMessage | str,
        lineage: Lineage = None,
        mode: str = "overwrite",
    ) -> CommitResult: ...
    def diff_stat(self, from_ref: str, to_ref: str, table: str) -> DiffStat: ...
    def diff_rows(
        self, from_ref: str, to_ref: str, table: str, *, branch: str | None, limit: int
    ) -> pd.DataFrame: ...
    def table_history(
        self, table: str, *, branch: str | None, limit: int | None = None, ref: str | None = None
    ) -> list[LogEntry]: ...
    def table_hash(self, table: str, *, ref: str, branch: str | None = None) -> str | None: ...
    def query(self, sql: str, *, ref: str | None = None) -> QueryResult: ...
