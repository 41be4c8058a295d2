"""Merges, on a scratch branch: previewed first, so a merge that would conflict changes nothing
unless told how to resolve."""

from __future__ import annotations

from typing import Any

from ..errors import DoltCommandError, DoltError
from ..naming import validate_branch, validate_ref
from . import scratch
from .commits import CommitMessage, render
from .messages import translated
from .repository import RepositoryOps
from .results import MergeResult
from .retry import with_retries
from .sql import merges as sql


class MergeOps(RepositoryOps):
    """:class:`~.protocol.DoltEngine`'s merge."""

    def merge(
        self, source: str, into: str, *, message: CommitMessage | str, on_conflict: str
    ) -> MergeResult:
        """Merge ``source`` into branch ``into`` (fast-forward when possible).

        ``on_conflict``: ``fail`` raises ``DoltError`` listing the conflicting keys and changes
        nothing; ``ours`` keeps ``into``'s cells; ``theirs`` takes ``source``'s. The merge is
        made and committed on a scratch branch from ``into``'s head, which ``into`` is then
        fast-forwarded to: the merge commit never takes the user's uncommitted work, and a
        failed merge leaves ``into`` as it was.
        """
        validate_ref(source)
        validate_branch(into)
        self.transport.require()
        with self.transport.lock(exclusive=True):
            data, schema = self._merge_conflicts(source, into)
            if schema:
                raise DoltError(
                    f"Merging {source!r} into {into!r} gives schema conflicts in table(s) "
                    f"{sorted(schema)}: both sides changed the columns or primary key "
                    f"differently. Nothing was merged and {into!r} is unchanged.",
                    fix="save with the columns, types and primary key the table has on "
                    f"{into!r}, or change the table's schema on {into!r} first; on_conflict "
                    "ours/theirs resolves row conflicts only.",
                )
            if data and on_conflict == "fail":
                keys = {t: self._conflicting_keys(source, into, t) for t in sorted(data)}
                raise DoltError(
                    f"Merging {source!r} into {into!r} conflicts; conflicting keys by table: "
                    f"{keys}. Nothing was merged and {into!r} is unchanged.",
                    fix="resolve the conflict in the data, or set on_conflict: ours (keep "
                    f"{into!r}'s values) or on_conflict: theirs (keep the new data).",
                )
            text = render(message)
            return with_retries(
                lambda: self._merge_on_scratch(source, into, text, on_conflict, data)
            )

    def _merge_on_scratch(
        self, source: str, into: str, message: str, on_conflict: str, conflicts: dict[str, int]
    ) -> MergeResult:
        name = scratch.branch_name("merge")
        resolve = on_conflict if conflicts else None
        script = sql.merge_script(source, name, message, self.author(), resolve)
        try:
            results = self.transport.run(script, branch=into)
        except DoltCommandError as exc:
            before, now = self.recovery.after_failed_script(
                f"merge {source!r} into {into!r}", into, name, exc, merges=2
            )
            return MergeResult(into, source, before, now, fast_forward=False)
        finally:
            scratch.release(name)
        merged = next(r for rows in results for r in rows if "fast_forward" in r)
        result = MergeResult(
            into=into,
            source=source,
            from_commit=str(results[0][0]["from_commit"]),
            to_commit=str(results[-1][0]["to_commit"]),
            fast_forward=bool(int(merged.get("fast_forward") or 0)),
            conflicts=sum(conflicts.values()),
            resolved=resolve,
        )
        if result.from_commit != result.to_commit:
            self.recovery.restage(results[1], into)
        return result

    def _merge_conflicts(self, source: str, into: str) -> tuple[dict[str, int], dict[str, int]]:
        """Data and schema conflicts per table that merging ``source`` into ``into`` would give."""
        with translated(f"Cannot merge {source!r} into {into!r} in {self.location}."):
            rows = with_retries(lambda: self.transport.run(sql.conflicts_summary(source, into)))
        data, schema = {}, {}
        for r in rows[0] if rows else []:
            if int(r.get("num_schema_conflicts") or 0):
                schema[r["table"]] = int(r["num_schema_conflicts"])
            elif int(r.get("num_data_conflicts") or 0):
                data[r["table"]] = int(r["num_data_conflicts"])
        return data, schema

    def _conflicting_keys(self, source: str, into: str, table: str) -> list[Any]:
        try:
            rows = with_retries(lambda: self.transport.run(sql.conflicts(source, into, table)))
        except DoltCommandError:
            return []  # schema conflicts have no row keys
        keys = []
        for row in rows[0] if rows else []:
            ours = {
                k[4:]: v for k, v in row.items() if k.startswith("our_") and k != "our_diff_type"
            }
            base = {k[5:]: v for k, v in row.items() if k.startswith("base_")}
            keys.append(ours or base)
        return keys
