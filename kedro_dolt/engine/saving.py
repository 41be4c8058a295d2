"""Saves: ``write_table`` and the guarded script on a scratch branch that every save runs.

What to write is planned by :mod:`.planning`; this module runs it: one script per attempt
(:func:`.sql.saves.save_script`), under the write lock, retried on a fresh scratch branch when
another writer was busy or moved the target first. A script stopped by its guard answers with
:class:`~.planning.Stopped`; any other failure goes to :mod:`.recovery`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from ..errors import DoltCommandError, DoltError
from ..naming import validate_branch, validate_table
from . import scratch
from .commits import CommitMessage
from .planning import Stopped, TableSave
from .protocol import SAVE_MODES, Lineage
from .remotes import RemoteOps
from .results import CommitResult, DiffStat, TableBase
from .retry import with_retries
from .schema import TableSchema
from .sql import saves as sql
from .sql import tables as sql_tables
from .transport import Load, Rows, Statement


class SaveOps(RemoteOps):
    """:class:`~.protocol.DoltEngine`'s ``write_table``."""

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
    ) -> CommitResult:
        """Write ``frame`` to ``table`` on ``branch`` in at most one commit.

        ``mode``: ``overwrite`` makes the frame the table's whole content; ``append``
        inserts its rows (an existing key is an error); ``upsert`` inserts or replaces rows
        by primary key and keeps the others. ``branch=None`` writes to the checked-out
        branch. Nothing is checked out. Identical content makes no commit. ``lineage=
        (lineage_table, row)`` adds ``row`` to that table in the same commit, only when
        ``table`` changed. A missing repository is created first (``dolt init``).

        The rows are written and committed on a private scratch branch made from the target's
        head, then the target is fast-forwarded to that commit: nobody reading the target ever
        sees a half-written table, the commit holds only ``table`` (and the lineage table),
        the user's uncommitted work on the target stays in its working set, and a failed or
        killed save leaves the target exactly as it was (see :mod:`.scratch`). A table with
        uncommitted changes on the target is never written. An overwrite whose rows match
        the head's (by :mod:`.fingerprint`) writes nothing; a small change of a keyed table
        writes only the changed rows (see :mod:`.planning`).
        """
        validate_table(table)
        if mode not in SAVE_MODES:
            raise DoltError(f"Invalid save mode {mode!r}.", fix=f"use one of {SAVE_MODES}.")
        target = validate_branch(branch) if branch else None
        self.ensure_repository(initial_branch=target)
        finish = sql.finish_statements(table, message, self.author(), lineage)
        scratch.remove_stale_temp_dirs()
        save = TableSave(self, table, frame, schema, target=target, mode=mode, finish=finish)
        try:
            return save.run()
        except DoltError as exc:
            if mode == "append" and "duplicate primary key" in exc.dolt_message:
                # The frame's own keys are unique (checked before writing): the table has one.
                raise DoltError(
                    f"{exc.what} save_args.mode append inserts new rows only, and a row "
                    "with one of these keys is already in the table.",
                    fix="use mode upsert to replace existing rows, or drop the rows "
                    "whose keys exist already.",
                    dolt_message=exc.dolt_message,
                ) from exc
            raise

    def base(self, table: str, branch: str | None) -> TableBase:
        """What a save builds on: the head, the table's content hash there and whether it
        has uncommitted changes, and its schema (``None`` when there is no such table)."""
        rows = self._read(
            sql.base_script(table),
            branch=branch,
            what=f"Cannot read table {table!r} on {branch or 'the checked-out branch'!r}.",
        )
        head = rows[0][0]
        columns = rows[1] if len(rows) > 1 else []
        return TableBase(
            head=str(head["head"]),
            branch=str(head["branch"]),
            table_hash=head.get("table_hash"),
            dirty=bool(int(head.get("dirty") or 0)),
            schema=TableSchema.from_show_columns(columns) if columns else None,
        )

    def save_on_scratch(
        self,
        table: str,
        schema: TableSchema,
        target: str | None,
        body: list[Statement],
        finish: list[str],
        *,
        expected: str | None,
    ) -> CommitResult | Stopped:
        """Run a save script under the write lock, retrying transient failures on a fresh
        scratch branch; ``Stopped`` when its guard stopped it before it committed."""

        def script(name: str) -> list[Statement]:
            return sql.save_script(table, schema, name, body, finish, expected_base=expected)

        # Rows the body loads into the table: all of a new table's (the frame's keys are
        # unique, checked before writing), so it is not counted again.
        loaded = sum(len(s.frame) for s in body if isinstance(s, Load) and s.table == table)
        with self.transport.lock(exclusive=True):
            return with_retries(lambda: self._commit_on_scratch(table, target, script, loaded))

    def _commit_on_scratch(
        self,
        table: str,
        target: str | None,
        script: Callable[[str], list[Statement]],
        loaded: int,
    ) -> CommitResult | Stopped:
        name = scratch.branch_name("save")
        try:
            results = self.transport.run(script(name), branch=target)
        except DoltCommandError as exc:
            stopped = _stopped(exc.results)
            if stopped is not None:
                self.recovery.discard_scratch(name, target)
                return stopped
            before, now = self.recovery.after_failed_script(
                f"save table {table!r}", target, name, exc
            )
            return CommitResult(target or "", before, now, DiffStat())
        finally:
            scratch.release(name)  # a branch of this name left behind is debris now
        status, leftovers, guard, result = results[1], results[2], results[3][0], results[-2][0]
        committed = result["from_commit"] != result["to_commit"]
        if committed:
            self.recovery.restage(status, target)
        self.recovery.remove_stale_branches([r["name"] for r in leftovers])
        return CommitResult(
            result["branch"],
            result["from_commit"],
            result["to_commit"],
            self._stats(table, result, results[-1], loaded) if committed else DiffStat(),
            result.get("table_hash"),
            guard.get("base_hash"),
        )

    def _stats(self, table: str, result: dict[str, Any], stat: Rows, loaded: int) -> DiffStat:
        """A committed save's change in rows (the script's diff stat, a new table's rows,
        or a count)."""
        if not int(result.get("existed") or 0):
            return DiffStat(added=loaded)
        if not int(result.get("diffable") or 0):
            # The primary key changed: Dolt sees a new table, so every row is replaced.
            counts = with_retries(
                lambda: self.transport.run(
                    sql_tables.row_counts(
                        table, str(result["from_commit"]), str(result["to_commit"])
                    )
                )
            )[0][0]
            return DiffStat(added=int(counts["new"]), deleted=int(counts["old"]))
        return DiffStat.from_row(stat[0] if stat else None)


def _stopped(results: list[Rows]) -> Stopped | None:
    """Why a failed save script's guard stopped it (see :func:`.sql.saves.save_script`),
    or ``None`` when something else failed."""
    sets = {name: rows[0] for rows in results if rows for name in rows[0]}
    guard = sets.get(sql.GUARD)
    if guard is None:
        return None
    base_hash = guard.get("base_hash")
    if not int(guard.get("proceed") or 0):
        return Stopped(dirty=False, base_hash=base_hash)
    if sql.WRITTEN in sets and int(guard.get("dirty") or 0):
        return Stopped(dirty=True, base_hash=base_hash)
    return None
