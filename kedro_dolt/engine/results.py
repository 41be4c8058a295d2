"""What engine operations return: plain frozen dataclasses, the same for every transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .schema import TableSchema


@dataclass(frozen=True)
class DiffStat:
    """Rows added, modified and deleted in a table between two commits (``dolt_diff_stat``)."""

    added: int = 0
    modified: int = 0
    deleted: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any] | None) -> DiffStat:
        row = row or {}
        return cls(
            int(row.get("rows_added") or 0),
            int(row.get("rows_modified") or 0),
            int(row.get("rows_deleted") or 0),
        )


@dataclass(frozen=True)
class CommitResult:
    """What a save did: the branch, its head before and after (equal when nothing changed)."""

    branch: str
    from_commit: str
    to_commit: str
    stats: DiffStat = field(default_factory=DiffStat)
    table_hash: str | None = None  # Dolt's content hash of the table after the save
    base_table_hash: str | None = None  # ... and before it, at the head the save built on

    @property
    def committed(self) -> bool:
        return self.from_commit != self.to_commit


@dataclass(frozen=True)
class TableBase:
    """Where a save starts: the branch head, the table's content hash and schema there."""

    head: str
    branch: str
    table_hash: str | None
    dirty: bool
    schema: TableSchema | None


@dataclass(frozen=True)
class MergeResult:
    """A merge into ``into``: its head after, how it went, and how conflicts were resolved."""

    into: str
    source: str
    from_commit: str
    to_commit: str
    fast_forward: bool
    conflicts: int = 0
    resolved: str | None = None  # "ours" / "theirs" when conflicts were resolved

    def to_dict(self) -> dict[str, Any]:
        return {
            "into": self.into,
            "source": self.source,
            "from_commit": self.from_commit,
            "to_commit": self.to_commit,
            "fast_forward": self.fast_forward,
            "conflicts": self.conflicts,
            "resolved": self.resolved,
        }


@dataclass(frozen=True)
class TableRead:
    """A loaded table: the commit it was read at, its schema and its rows."""

    commit: str
    schema: TableSchema
    frame: pd.DataFrame
    branch: str = ""  # the session branch HEAD resolved against (the checked-out one by default)


@dataclass(frozen=True)
class QueryResult:
    """A query's rows and the commit it ran at."""

    commit: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class LogEntry:
    """One commit from ``dolt_log``."""

    commit: str
    author: str
    email: str
    date: str
    message: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LogEntry:
        """From a ``dolt_log``/``dolt_diff`` row (JSON omits NULL columns)."""
        return cls(
            row["commit_hash"],
            row.get("committer", ""),
            row.get("email", ""),
            str(row.get("date", "")),
            row.get("message", ""),
        )


@dataclass(frozen=True)
class RepositoryState:
    """Branch heads, the checked-out branch and uncommitted changes: what "unchanged" means."""

    checked_out: str
    heads: dict[str, str]
    dirty_branches: frozenset[str] = field(default_factory=frozenset)
    working_changes: tuple[tuple[str, bool, str], ...] = ()
