"""Reads: tables at a commit, their content hashes, diffs, history, and read-only queries.

A read resolves its ref to a commit and reads ``AS OF`` it: it never moves a branch, never
checks anything out and never sees uncommitted changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..errors import DoltError
from ..naming import parse_time_ref, quote_string, validate_ref, validate_table
from . import column_types, load_cache
from .codec import decode_table, exact_from_text
from .known_versions import known_versions
from .messages import translated
from .repository import RepositoryOps
from .results import DiffStat, LogEntry, QueryResult, TableRead
from .retry import with_retries
from .schema import TableSchema
from .sql import tables as sql
from .sql.common import use


class ReadOps(RepositoryOps):
    """:class:`~.protocol.DoltEngine`'s reads."""

    def has_table(self, table: str, *, ref: str, branch: str | None = None) -> bool:
        if not self.exists():
            return False
        try:
            if parse_time_ref(validate_ref(ref)):
                ref = self.resolve(ref, branch=branch)
        except DoltError:
            return False  # no commit at that time, or no such branch
        try:
            rows = self._read(sql.show_tables(ref), branch=branch, what="")
        except DoltError as exc:
            if "not found" in exc.dolt_message:
                return False  # no such branch or ref: it has no table
            raise
        return any(validate_table(table) in r.values() for r in (rows[0] if rows else []))

    def read_table(
        self,
        table: str,
        *,
        ref: str,
        branch: str | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> TableRead:
        if parse_time_ref(validate_ref(ref)):
            ref = self.resolve(ref, branch=branch)
        self.transport.require()
        if self.transport.cheap_round_trips:  # (schema first: it decides how rows are read)
            return self._read_cached(load_cache.shared(), table, ref, branch, columns, limit)
        script = sql.read_script(table, ref)
        where = f"table {table!r} at ref {ref!r}" + (f" (branch {branch!r})" if branch else "")
        with (
            self.transport.lock(exclusive=False),
            translated(f"Cannot load {where} from {self.location}."),
        ):
            results = with_retries(
                lambda: self.transport.run_read(
                    script, lambda at: sql.rows(table, at or ref, columns, limit), branch=branch
                )
            )
        head, described, leftovers, rows = results
        start = head.to_pylist()[0]
        schema = TableSchema.from_show_columns(described.to_pylist()).select(columns)
        if not exact_from_text(rows, schema):  # a column type only a typed format keeps
            rows = self._typed_rows(table, str(start["h"]), branch, columns, limit)
        self.recovery.clear_debris([r["name"] for r in leftovers.to_pylist()])
        frame = decode_table(rows, schema)
        return TableRead(str(start["h"]), schema, frame, str(start.get("b") or ""))

    def _read_cached(
        self,
        cache: load_cache.LoadCache,
        table: str,
        ref: str,
        branch: str | None,
        columns: Sequence[str] | None,
        limit: int | None,
    ) -> TableRead:
        """``read_table`` through the load cache (when it is on): the commit ``ref`` names,
        the table's hash and schema there (remembered per commit: a commit never changes),
        then the cached rows of that version or (a miss) Dolt's, kept."""
        where = f"table {table!r} at ref {ref!r}" + (f" (branch {branch!r})" if branch else "")
        with (
            self.transport.lock(exclusive=False),
            translated(f"Cannot load {where} from {self.location}."),
        ):
            start = with_retries(lambda: self.transport.run(sql.commit_of(ref), branch=branch))
            head = start[0][0]
            commit = str(head["h"])
            known = known_versions.get(self.location, commit, table)
            leftovers: list[dict[str, Any]] = []
            if known is None:
                database = str(head["db"]).split("/")[0]
                described, leftovers, hashed = with_retries(
                    lambda: self.transport.run(
                        sql.version_script(database, commit, table), branch=branch
                    )
                )
                known = (str(hashed[0]["h"]), TableSchema.from_show_columns(described))
                known_versions.put(self.location, commit, table, *known)
        if leftovers:
            self.recovery.clear_debris([r["name"] for r in leftovers])
        table_hash, full = known
        schema = full.select(columns)
        key = load_cache.CacheKey(table_hash, full)
        at_branch = str(head.get("b") or "")
        cached = cache.get(key, list(columns) if columns else None)
        if cached is not None and (limit is None or full.primary_key):
            # (The first rows of a keyless table are those of Dolt's storage order.)
            frame = decode_table(cached if limit is None else cached.slice(0, limit), schema)
            return TableRead(commit, schema, frame, at_branch)
        rows = self._rows_of(table, commit, branch, columns, limit, schema)
        if columns is None and limit is None:
            cache.put(key, rows)
        return TableRead(commit, schema, decode_table(rows, schema), at_branch)

    def _rows_of(
        self,
        table: str,
        commit: str,
        branch: str | None,
        columns: Sequence[str] | None,
        limit: int | None,
        schema: TableSchema,
    ) -> Any:
        """The rows at ``commit`` read the fastest way that keeps ``schema``'s values exact:
        connectorx fails on or rounds some types (those tables are read with PyMySQL)."""
        typed = any(column_types.needs_typed_read(c.sql_type) for c in schema.columns)
        rows = self._typed_rows(table, commit, branch, columns, limit, typed=typed)
        if not typed and not exact_from_text(rows, schema):
            rows = self._typed_rows(table, commit, branch, columns, limit)
        return rows

    def _typed_rows(
        self,
        table: str,
        commit: str,
        branch: str | None,
        columns: Sequence[str] | None,
        limit: int | None,
        *,
        typed: bool = True,
    ) -> Any:
        """The rows at ``commit`` in the transport's typed format (Parquet for the CLI), or
        (``typed=False``) its fastest one."""
        statement = sql.rows(table, commit, columns, limit)
        with self.transport.lock(exclusive=False), translated(f"Cannot load table {table!r}."):
            if not typed:
                first = f"SELECT {quote_string(commit)} AS h;"
                return with_retries(
                    lambda: self.transport.run_read([first], lambda _: statement, branch=branch)
                )[-1]
            return with_retries(lambda: self.transport.run_arrow([statement], branch=branch))[0]

    def table_hash(self, table: str, *, ref: str, branch: str | None = None) -> str | None:
        """Dolt's content hash of ``table`` (schema + rows) at ``ref``; ``None`` if absent."""
        rows = self._read(
            sql.where_is(ref), branch=branch, what=f"Unknown ref {ref!r} in {self.location}."
        )
        database, commit = rows[0][0]["db"].split("/")[0], rows[0][0].get("h")
        if not commit:
            return None
        known = known_versions.get(self.location, str(commit), table)
        if known is not None:  # (a commit never changes, so neither does its table)
            return known[0]
        try:
            hashed = self._read(
                sql.table_hash(database, commit, table),
                what=f"Cannot hash table {table!r} at {ref!r}.",
            )
        except DoltError as exc:
            if "not found" in exc.dolt_message:
                return None  # no such table in that commit
            raise
        return str(hashed[-1][0]["h"])

    def diff_stat(self, from_ref: str, to_ref: str, table: str) -> DiffStat:
        if from_ref == to_ref:
            return DiffStat()
        rows = self._read(
            sql.diff_stat(from_ref, to_ref, table),
            what=f"Cannot diff {table!r} between {from_ref!r} and {to_ref!r}.",
        )
        return DiffStat.from_row(rows[0][0] if rows and rows[0] else None)

    def diff_rows(
        self, from_ref: str, to_ref: str, table: str, *, branch: str | None, limit: int
    ) -> pd.DataFrame:
        """The first ``limit`` changed rows (``dolt_diff``: to_*, from_*, diff_type), for
        display: values arrive as JSON types."""
        what = f"Cannot diff {table!r} between {from_ref!r} and {to_ref!r}."
        ends = self._read(sql.commits_of(from_ref, to_ref), branch=branch, what=what)[0][0]
        # JSON, not Parquet: Dolt's Parquet writer fails on the NULL keys of added rows.
        rows = self._read(
            sql.diff_rows(str(ends["a"]), str(ends["b"]), table, limit), branch=branch, what=what
        )
        changes = rows[0] if rows else []
        # Every key any row has (JSON drops NULLs), in one order whatever the transport.
        columns = sorted({key for row in changes for key in row})
        return pd.DataFrame(changes, columns=columns)

    def table_history(
        self, table: str, *, branch: str | None, limit: int | None = None, ref: str | None = None
    ) -> list[LogEntry]:
        """Commits that changed ``table``, newest first (``dolt_diff``): those of ``branch``,
        or with ``ref``, those reachable from that commit."""
        what = f"Cannot read the history of {table!r}."
        script = sql.history(table, limit)
        if ref is not None:
            at = self._read(sql.where_is(ref), branch=branch, what=what)[0][0]
            script = [use(str(at["db"]).split("/")[0], str(at["h"])), *script]
        rows = self._read(script, branch=branch, what=what)
        return [LogEntry.from_row(r) for r in (rows[-1] if rows else [])]

    def query(self, sql_text: str, *, ref: str | None = None) -> QueryResult:
        """Run one read-only ``SELECT`` at ``ref`` (default: the checked-out branch's head).

        ``sql_text`` must pass :func:`~.sql_policy.read_only_statement` (checked here too:
        the engine is the boundary). What runs is that statement, in the read-only revision
        database of the resolved commit (and, for the CLI, while Dolt can open the repository
        only read-only; see ``DoltProcess.run_query``).
        """
        from .sql_policy import read_only_statement  # sqlglot: only with a query dataset

        statement = read_only_statement(sql_text)
        self.transport.require()
        with (
            self.transport.lock(exclusive=False),
            translated(
                f"Query failed on {self.location} at {ref or 'HEAD'!r}.",
                "check the SQL (one read-only SELECT).",
            ),
        ):
            info = with_retries(lambda: self.transport.run(sql.where_is(ref or "HEAD")))[0][0]
            database, commit = str(info["db"]).split("/")[0], str(info["h"])
            table = self.transport.run_query(database, commit, statement)
        if table is None:
            raise DoltError(
                "The query returned no result set.",
                fix="give one SELECT statement (statements that write are not allowed).",
            )
        return QueryResult(commit, decode_table(table))
