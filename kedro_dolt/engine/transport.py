"""How statements reach Dolt: the contract each transport (a ``dolt`` process, a MySQL
connection to ``dolt sql-server``) fulfils for the engine's operations. Transports differ
only in how they reach the database, execute statements, stream rows and classify errors;
the statements (:mod:`.sql`), retries (:mod:`.retry`) and error wording are the engine's.

An operation is written once as a list of statements (see :mod:`.sql`); a transport
runs the list in one session on a branch and returns the result sets. Rows to bulk-load are
not SQL text but a :class:`Load`, which each transport sends its fastest exact way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pyarrow as pa

from .schema import TableSchema

#: The rows of one result set, as ``{column: value}`` with JSON-like values. NULL values are
#: left out (``dolt sql -r json`` cannot show them), on every transport: read with ``.get``.
Rows = list[dict[str, Any]]


def row_of(names: Sequence[str], values: Iterable[Any]) -> dict[str, Any]:
    """One row in the :data:`Rows` form."""
    return {n: v for n, v in zip(names, values, strict=True) if v is not None}


@dataclass(frozen=True, eq=False)
class Load:
    """``frame``'s rows loaded into ``table`` (``replace``: a row with an existing key
    replaces it). The CLI sends them with ``LOAD DATA INFILE``; a server with
    ``LOAD DATA LOCAL INFILE`` when it allows that, else in batched multi-row INSERTs."""

    table: str
    schema: TableSchema
    frame: pd.DataFrame
    replace: bool = False


Statement = str | Load


class Transport(Protocol):
    """One Dolt database reached one way."""

    @property
    def location(self) -> str: ...
    @property
    def cache_dir(self) -> Path: ...
    @property
    def keeps_negative_zero(self) -> bool:
        """Whether a saved ``-0.0`` stays ``-0.0`` (``LOAD DATA``) or becomes ``0.0``."""
        ...

    @property
    def cheap_round_trips(self) -> bool:
        """Whether one more statement costs a round trip on an open session (a server),
        not a new ``dolt`` process: worth a look in the load cache first."""
        ...

    def exists(self) -> bool: ...
    def require(self) -> None: ...
    def ensure(self, initial_branch: str | None) -> None: ...
    def author(self) -> str | None: ...
    def lock(self, *, exclusive: bool) -> AbstractContextManager[None]: ...
    def run(
        self,
        statements: Sequence[Statement],
        *,
        branch: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        """Run ``statements`` in one session on ``branch`` (default: the checked-out or the
        default branch); their result sets. A statement that fails raises
        ``DoltCommandError`` (``transient`` when the same work may simply be tried again,
        ``results``: the result sets before it) or, when the database cannot be reached at
        all, ``DoltError`` with the fix. Nothing is retried here (see :mod:`.retry`)."""
        ...

    def run_arrow(
        self, statements: Sequence[str], *, branch: str | None = None
    ) -> list[pa.Table]: ...
    def run_read(
        self, statements: Sequence[str], rows_at: Callable[[str | None], str], *, branch: str | None
    ) -> list[pa.Table]:
        """``statements`` (the first returns the commit ``h`` being read) then the rows
        statement ``rows_at(h)``, or ``rows_at(None)`` to read at the ref as given."""
        ...

    def run_query(self, database: str, revision: str, statement: str) -> pa.Table | None: ...
    def clone(
        self,
        url: str,
        *,
        remote: str,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None: ...
