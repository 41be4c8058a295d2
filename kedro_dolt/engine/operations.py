"""The engine's operations, written once over a :class:`~.transport.Transport`.

Design notes (see docs/dolt-facts.md):

* Reads never use the working set or the checked-out branch: a ref is resolved to a commit
  hash and the table is read ``AS OF`` that hash, so loading never moves HEAD and sees
  committed data only.
* A save or merge runs as one script on a private scratch branch that the target is then
  fast-forwarded to (:mod:`.statements`): one engine start, one commit at most, readers never
  see a half-written table, and a failed save leaves the target as it was.
* Writes hold the transport's exclusive lock (a file lock for the CLI; the server orders
  concurrent writers itself, and a writer that loses the race retries on a new scratch branch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from .. import scratch
from ..errors import DoltCommandError, DoltError
from ..naming import (
    parse_time_ref,
    quote_identifier,
    quote_string,
    validate_branch,
    validate_ref,
    validate_table,
)
from ..schema import TableSchema, decode_table, exact_from_text
from . import statements as sql
from .messages import explain, is_transient, translated, with_retries
from .protocol import SAVE_MODES, Lineage, RemoteAuth
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
from .saving import Stopped, TableSave
from .transport import Rows, Statement, Transport

#: Engines built in this process by location, so run records (which name a database by its
#: location) lead back to the engine, credentials included, that wrote them.
_BUILT: dict[str, SQLEngine] = {}


def _user_args(auth: RemoteAuth | None) -> str:
    """``'--user', 'NAME', `` for a remote procedure call, or nothing."""
    return f"'--user', {quote_string(auth.user)}, " if auth else ""


def _password_env(auth: RemoteAuth | None) -> dict[str, str] | None:
    """``DOLT_REMOTE_PASSWORD`` for the one ``dolt`` child that needs it (never os.environ,
    never a command line); a server transport ignores it: the server reads its own."""
    if auth is None or auth.password is None:
        return None
    return {"DOLT_REMOTE_PASSWORD": auth.password}


class SQLEngine:
    """Every :class:`~.protocol.DoltEngine` operation as SQL scripts over one transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        _BUILT.setdefault(transport.location, self)

    @property
    def location(self) -> str:
        return self.transport.location

    # -- running scripts ------------------------------------------------------------------

    def _read(self, script: Sequence[str], *, branch: str | None = None, what: str) -> list[Rows]:
        self.transport.require()
        with self.transport.lock(exclusive=False), translated(what):
            return self.transport.run(script, branch=branch)

    def _write(
        self,
        script: Sequence[str],
        *,
        what: str,
        branch: str | None = None,
        fix: str = "",
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        self.transport.require()
        with self.transport.lock(exclusive=True), translated(what, fix):
            return self.transport.run(script, branch=branch, env=env)

    # -- repository -------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.transport.exists()

    def ensure_repository(self, initial_branch: str | None = None) -> None:
        """Create the database unless it exists (``dolt init``, ``CREATE DATABASE``)."""
        self.transport.ensure(initial_branch)

    def author(self) -> str | None:
        return self.transport.author()

    def active_branch(self) -> str:
        rows = self._read(
            ["SELECT active_branch() AS b;"], what="Cannot read the checked-out branch."
        )
        return str(rows[0][0]["b"])

    def branch_exists(self, branch: str) -> bool:
        return validate_branch(branch) in self.state().heads

    def state(self) -> RepositoryState:
        rows = self._read(
            [
                "SELECT active_branch() AS b;",
                "SELECT name, hash, dirty FROM dolt_branches;",
                "SELECT table_name, staged, status FROM dolt_status;",
            ],
            what=f"Cannot read the state of {self.location}.",
        )
        checked_out = rows[0][0]["b"]
        branches = rows[1]
        changes = rows[2] if len(rows) > 2 else []
        return RepositoryState(
            checked_out=checked_out,
            heads={r["name"]: r["hash"] for r in branches},
            dirty_branches=frozenset(r["name"] for r in branches if r.get("dirty")),
            working_changes=tuple(
                sorted((r["table_name"], bool(r.get("staged")), r["status"]) for r in changes)
            ),
        )

    def resolve(self, ref: str, *, branch: str | None = None) -> str:
        """The commit hash ``ref`` names; ``HEAD`` means the head of ``branch``.

        ``X@{time}`` is the last commit of X at or before that UTC time.
        """
        rows = self._read(
            [f"SELECT {sql.hash_expression(validate_ref(ref))} AS h;"],
            branch=branch,
            what=f"Unknown ref {ref!r} in {self.location}.",
        )
        found = rows[0][0].get("h") if rows and rows[0] else None
        if not found:
            raise DoltError(
                f"Ref {ref!r} names no commit in {self.location}.",
                fix="for a time ref, give a time after the branch's first commit (UTC).",
            )
        return str(found)

    def create_branch(self, branch: str, start_point: str, *, exist_ok: bool = False) -> None:
        if parse_time_ref(validate_ref(start_point, key="start_point")):
            start_point = self.resolve(start_point)  # dolt_branch knows no X@{time}
        try:
            self._write(
                [
                    f"CALL dolt_branch({quote_string(validate_branch(branch))}, "
                    f"{quote_string(validate_ref(start_point, key='start_point'))});"
                ],
                what=f"Cannot create branch {branch!r} from {start_point!r}.",
            )
        except DoltError as exc:
            # Two nodes may race to create the same branch: the loser finds it there.
            if not (exist_ok and "already exists" in exc.dolt_message):
                raise

    def delete_branch(self, branch: str) -> None:
        self._write(
            [f"CALL dolt_branch('-D', {quote_string(validate_branch(branch))});"],
            what=f"Cannot delete branch {branch!r}.",
        )

    # -- merges -------------------------------------------------------------------------------

    def merge(self, source: str, into: str, *, message: str, on_conflict: str) -> MergeResult:
        """Merge ``source`` into branch ``into`` (fast-forward when possible).

        ``on_conflict``: ``fail`` raises ``DoltError`` listing the conflicting keys and changes
        nothing; ``ours`` keeps ``into``'s cells; ``theirs`` takes ``source``'s. The merge is
        made and committed on a scratch branch from ``into``'s head, which ``into`` is then
        fast-forwarded to: the merge commit never takes the user's uncommitted work, and a
        failed merge leaves ``into`` as it was.
        """
        src, dst = quote_string(validate_ref(source)), quote_string(validate_branch(into))
        self.transport.require()
        with self.transport.lock(exclusive=True):
            data, schema = self._merge_conflicts(src, dst, source, into)
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
                keys = {t: self._conflicting_keys(src, dst, t) for t in sorted(data)}
                raise DoltError(
                    f"Merging {source!r} into {into!r} conflicts; conflicting keys by table: "
                    f"{keys}. Nothing was merged and {into!r} is unchanged.",
                    fix="resolve the conflict in the data, or set on_conflict: ours (keep "
                    f"{into!r}'s values) or on_conflict: theirs (keep the new data).",
                )
            return with_retries(
                lambda: self._merge_on_scratch(source, into, message, on_conflict, data)
            )

    def _merge_on_scratch(
        self, source: str, into: str, message: str, on_conflict: str, conflicts: dict[str, int]
    ) -> MergeResult:
        name = scratch.branch_name("merge")
        resolve = on_conflict if conflicts else None
        script = sql.merge_script(source, name, message, self.author(), resolve)
        try:
            results = self.transport.run(script, branch=into, retry=False)
        except DoltCommandError as exc:
            before, now = self._after_failed_script(
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
            self._restage(results[1], into)
        return result

    def _merge_conflicts(
        self, src: str, dst: str, source: str, into: str
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Data and schema conflicts per table that merging ``src`` into ``dst`` would give."""
        with translated(f"Cannot merge {source!r} into {into!r} in {self.location}."):
            rows = self.transport.run(
                [f"SELECT * FROM dolt_preview_merge_conflicts_summary({dst}, {src});"]
            )
        data, schema = {}, {}
        for r in rows[0] if rows else []:
            if int(r.get("num_schema_conflicts") or 0):
                schema[r["table"]] = int(r["num_schema_conflicts"])
            elif int(r.get("num_data_conflicts") or 0):
                data[r["table"]] = int(r["num_data_conflicts"])
        return data, schema

    def _conflicting_keys(self, src: str, dst: str, table: str) -> list[Any]:
        try:
            rows = self.transport.run(
                [
                    f"SELECT * FROM dolt_preview_merge_conflicts({dst}, {src}, "
                    f"{quote_string(table)});"
                ]
            )
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

    # -- history ------------------------------------------------------------------------------

    def find_run_commit(self, run_id: str, *, table: str, branch: str | None) -> str | None:
        """The newest commit on ``branch`` whose trailers name Kedro run ``run_id`` and
        ``table``; ``None`` when that run made no commit of the table there."""
        from ..commits import parse_trailers  # commit messages are commits.py's format

        source = f"dolt_log({quote_string(validate_branch(branch))})" if branch else "dolt_log"
        like = quote_string(f"%Kedro-Run-Id: {run_id}%")
        rows = self._read(
            [f"SELECT commit_hash, message FROM {source} WHERE message LIKE {like};"],
            what=f"Cannot search the log of {branch or 'the checked-out branch'!r}.",
        )
        for row in rows[0] if rows else []:
            trailers = parse_trailers(row.get("message", ""))
            if trailers.get("run_id") == run_id and trailers.get("table") == table:
                return str(row["commit_hash"])
        return None

    def tag(self, name: str, ref: str, message: str = "") -> None:
        args = [validate_branch(name, key="tag"), validate_ref(ref)]
        args += ["-m", message] if message else []
        self._write(
            [f"CALL dolt_tag({', '.join(map(quote_string, args))});"],
            what=f"Cannot tag {ref!r} as {name!r}.",
        )

    def tags(self) -> dict[str, str]:
        """Tag name -> the commit it names."""
        rows = self._read(["SELECT tag_name, tag_hash FROM dolt_tags;"], what="Cannot list tags.")
        return {r["tag_name"]: r["tag_hash"] for r in (rows[0] if rows else [])}

    def log(self, ref: str | None = None, limit: int | None = None) -> list[LogEntry]:
        """Commits reachable from ``ref`` (default: the checked-out branch), newest first."""
        source = f"dolt_log({quote_string(validate_ref(ref))})" if ref else "dolt_log"
        lim = f" LIMIT {int(limit)}" if limit else ""
        rows = self._read(
            [f"SELECT commit_hash, committer, email, date, message FROM {source}{lim};"],
            what=f"Cannot read the log of {ref or 'the checked-out branch'!r}.",
        )
        return [LogEntry.from_row(r) for r in (rows[0] if rows else [])]

    # -- remotes ------------------------------------------------------------------------------

    def remotes(self) -> dict[str, str]:
        rows = self._read(["SELECT name, url FROM dolt_remotes;"], what="Cannot list remotes.")
        return {r["name"]: r["url"] for r in (rows[0] if rows else [])}

    def remove_remote(self, name: str) -> None:
        self._write(
            [
                "CALL dolt_remote('remove', "
                f"{quote_string(validate_branch(name, key='remote name'))});"
            ],
            what=f"Cannot remove remote {name!r} from {self.location}.",
        )

    def add_remote(self, name: str, url: str) -> None:
        self._write(
            [
                "CALL dolt_remote('add', "
                f"{quote_string(validate_branch(name, key='remote name'))}, {quote_string(url)});"
            ],
            what=f"Cannot add remote {name!r} ({url}) to {self.location}.",
            fix="check the remote url: file:///abs/dir must be a creatable directory; "
            "https://, aws:// and gs:// remotes need their credentials (see the README).",
        )

    def clone(self, url: str, *, remote: str, auth: RemoteAuth | None = None) -> None:
        """Clone ``url`` as this database (which must not exist yet)."""
        user = auth.user if auth else None
        self.transport.clone(url, remote=remote, user=user, env=_password_env(auth))

    def pull(
        self, remote: str, branch: str, *, auth: RemoteAuth | None = None
    ) -> MergeResult | None:
        """Fetch ``remote`` and merge its ``branch`` into the local one (created if missing).

        ``None`` when the remote has no such branch yet. A conflict raises ``DoltError`` and
        merges nothing.
        """
        name = quote_string(validate_branch(remote, key="remote name"))
        tracking = f"{remote}/{validate_branch(branch)}"
        rows = self._write(
            [
                f"CALL dolt_fetch({_user_args(auth)}{name});",
                "SELECT name, hash FROM dolt_remote_branches "
                f"WHERE name = {quote_string('remotes/' + tracking)};",
                f"SELECT name, hash FROM dolt_branches WHERE name = {quote_string(branch)};",
            ],
            what=f"Cannot fetch from remote {remote!r} of {self.location}.",
            fix="check the remote's url (`dolt remote -v`), that it is reachable and holds a "
            "Dolt database, and its credentials.",
            env=_password_env(auth),
        )
        has_remote_branch, has_local_branch = bool(rows[1]), bool(rows[2])
        if not has_remote_branch:
            return None
        if not has_local_branch:
            self.create_branch(branch, tracking, exist_ok=True)
            head = self.resolve(branch)
            return MergeResult(branch, tracking, head, head, fast_forward=True)
        head = str(rows[2][0]["hash"])
        if str(rows[1][0]["hash"]) == head:
            # Already the remote's head (the usual case after our own push): nothing to merge.
            return MergeResult(branch, tracking, head, head, fast_forward=True)
        return self.merge(
            tracking, branch, message=f"kedro-dolt: pull {tracking}", on_conflict="fail"
        )

    def push(self, remote: str, branch: str, *, auth: RemoteAuth | None = None) -> None:
        """``dolt_push`` ``branch`` to ``remote``; a rejection raises ``DoltError`` whose
        ``dolt_message`` says "rejected" (never forced)."""
        self._write(
            [
                f"CALL dolt_push({_user_args(auth)}"
                f"{quote_string(validate_branch(remote, key='remote name'))}, "
                f"{quote_string(validate_branch(branch))});"
            ],
            what=f"Cannot push {branch!r} to remote {remote!r}.",
            env=_password_env(auth),
        )

    # -- tables -------------------------------------------------------------------------------

    def has_table(self, table: str, *, ref: str, branch: str | None = None) -> bool:
        if not self.exists():
            return False
        try:
            if parse_time_ref(validate_ref(ref)):
                ref = self.resolve(ref, branch=branch)
        except DoltError:
            return False  # no commit at that time, or no such branch
        try:
            rows = self._read(
                [f"SHOW TABLES AS OF {quote_string(validate_ref(ref))};"], branch=branch, what=""
            )
        except DoltError as exc:
            if "not found" in exc.dolt_message:
                return False
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
        script = sql.read_script(table, ref)
        self.transport.require()
        with self.transport.lock(exclusive=False):
            where = f"table {table!r} at ref {ref!r}" + (f" (branch {branch!r})" if branch else "")
            with translated(f"Cannot load {where} from {self.location}."):
                results = self.transport.run_read(
                    script,
                    lambda at: sql.rows_statement(table, at or ref, columns, limit),
                    branch=branch,
                )
        head, described, leftovers, rows = results
        start = head.to_pylist()[0]
        schema = TableSchema.from_show_columns(described.to_pylist()).select(columns)
        if not exact_from_text(rows, schema):  # a column type only a typed format keeps
            rows = self._typed_rows(table, str(start["h"]), branch, columns, limit)
        self._clear_debris([r["name"] for r in leftovers.to_pylist()])
        frame = decode_table(rows, schema)
        return TableRead(str(start["h"]), schema, frame, str(start.get("b") or ""))

    def _typed_rows(
        self,
        table: str,
        commit: str,
        branch: str | None,
        columns: Sequence[str] | None,
        limit: int | None,
    ) -> Any:
        """The rows at ``commit`` in the transport's typed format (Parquet for the CLI)."""
        with self.transport.lock(exclusive=False), translated(f"Cannot load table {table!r}."):
            return self.transport.run_arrow(
                [sql.rows_statement(table, commit, columns, limit)], branch=branch
            )[0]

    def _clear_debris(self, branches: Sequence[str]) -> None:
        """After a read: remove what crashed saves left (only when there is any)."""
        scratch.remove_stale_temp_dirs()
        if scratch.stale_branches(branches):
            with self.transport.lock(exclusive=True):
                self._remove_stale_branches(branches)

    def write_table(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        schema: TableSchema,
        branch: str | None,
        message: str,
        lineage: Lineage = None,
        mode: str = "overwrite",
    ) -> CommitResult:
        """Write ``frame`` to ``table`` on ``branch`` in at most one commit.

        ``mode``: ``overwrite`` makes the frame the table's whole content; ``append``
        inserts its rows (an existing key is an error); ``upsert`` inserts or replaces rows
        by primary key and keeps the others. ``branch=None`` writes to the checked-out
        branch. Nothing is checked out. Identical content makes no commit. ``lineage=
        (lineage_table, row)`` adds ``row`` to that table in the same commit, only when
        ``table`` changed.

        The rows are written and committed on a private scratch branch made from the target's
        head, then the target is fast-forwarded to that commit: nobody reading the target ever
        sees a half-written table, the commit holds only ``table`` (and the lineage table),
        the user's uncommitted work on the target stays in its working set, and a failed or
        killed save leaves the target exactly as it was (see :mod:`kedro_dolt.scratch`).
        A table with uncommitted changes on the target is never written. An overwrite whose
        rows match the head's (by :mod:`kedro_dolt.fingerprint`) writes nothing; a small
        change of a keyed table writes only the changed rows (see :mod:`.saving`).
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
        """Run a save script (see :func:`.statements.save_script`) under the write lock,
        retrying transient failures on a fresh scratch branch."""

        def script(name: str) -> list[Statement]:
            return sql.save_script(table, schema, name, body, finish, expected_base=expected)

        with self.transport.lock(exclusive=True):
            return with_retries(lambda: self._commit_on_scratch(table, target, script))

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

    def _commit_on_scratch(
        self, table: str, target: str | None, script: Callable[[str], list[Statement]]
    ) -> CommitResult | Stopped:
        """Run ``script(scratch branch)`` from ``target``'s head: it commits on the scratch
        branch, fast-forwards ``target`` to its commit and deletes the scratch branch.
        ``Stopped`` when a guard stopped it before it committed."""
        name = scratch.branch_name("save")
        try:
            results = self.transport.run(script(name), branch=target, retry=False)
        except DoltCommandError as exc:
            stopped = _stopped(exc.results)
            if stopped is not None:
                self._discard_scratch(name, target)
                return stopped
            before, now = self._after_failed_script(f"save table {table!r}", target, name, exc)
            return CommitResult(target or "", before, now, DiffStat())
        finally:
            scratch.release(name)  # a branch of this name left behind is debris now
        status, leftovers, guard, result = results[1], results[2], results[3][0], results[-2][0]
        committed = result["from_commit"] != result["to_commit"]
        if committed:
            self._restage(status, target)
        self._remove_stale_branches([r["name"] for r in leftovers])
        stats = DiffStat.from_row(results[-1][0] if results[-1] else None)
        if committed and result.get("new_table_rows") is not None:
            stats = DiffStat(added=int(result["new_table_rows"]))
        elif committed and not int(result.get("diffable") or 0):
            # The primary key changed: Dolt sees a new table, so every row is replaced.
            stats = self._replaced_rows(table, result["from_commit"], result["to_commit"])
        return CommitResult(
            result["branch"],
            result["from_commit"],
            result["to_commit"],
            stats,
            result.get("table_hash"),
            guard.get("base_hash"),
        )

    def _replaced_rows(self, table: str, before: str, after: str) -> DiffStat:
        name = quote_identifier(table)
        rows = self.transport.run(
            [
                f"SELECT (SELECT COUNT(*) FROM {name} AS OF {quote_string(before)}) AS old, "
                f"(SELECT COUNT(*) FROM {name} AS OF {quote_string(after)}) AS new;"
            ]
        )[0][0]
        return DiffStat(added=int(rows["new"]), deleted=int(rows["old"]))

    def _after_failed_script(
        self,
        action: str,
        target: str | None,
        scratch_name: str,
        exc: DoltCommandError,
        *,
        merges: int = 1,
    ) -> tuple[str, str]:
        """Remove the scratch branch of a failed save or merge script and find out what
        happened: ``(head before, head now)`` when the target was fast-forwarded (the
        script's ``merges``-th merge) before a later statement failed; otherwise raise,
        saying "nothing was changed" only when the target's head is where it was. When
        another writer moved the target first, the work is retried on a new scratch branch."""
        ran = exc.results
        before = ran[0][0]["from_commit"] if ran and ran[0] else None
        done = sum("fast_forward" in r for rows in ran for r in rows)
        now = self._discard_scratch(scratch_name, target)
        where = (
            f"branch {target!r} of {self.location}"
            if target
            else f"the checked-out branch of {self.location}"
        )
        if before is not None and now is None:
            raise DoltError(
                f"Cannot {action} on {where}, and its head could not be read afterwards to "
                "check what changed.",
                fix=explain(exc.dolt_message, "check `dolt status` and `dolt log`."),
                dolt_message=exc.dolt_message,
            ) from exc
        if before is not None and now is not None and now != before:
            if done >= merges:
                return str(before), str(now)  # done; only a statement after it failed
            # Another writer committed to the target first; ours landed nowhere.
            raise DoltCommandError(
                exc.args_run,
                exc.returncode,
                f"{exc.dolt_message}\n(the head moved from {before} to {now} meanwhile)",
                transient=True,
                what=f"Cannot {action} on {where}: another writer committed to it first, "
                "each time it was tried; nothing was changed.",
            ) from exc
        if is_transient(exc):
            raise exc  # nothing changed: with_retries tries again
        raise DoltError(
            f"Cannot {action} on {where}; nothing was changed.",
            fix=explain(exc.dolt_message),
            dolt_message=exc.dolt_message,
        ) from exc

    def _discard_scratch(self, scratch_name: str, target: str | None) -> str | None:
        """Delete a failed save's scratch branch; the target's head now (``None``: unknown)."""
        script = [
            "SELECT dolt_hashof('HEAD') AS h;",
            f"CALL dolt_branch('-D', {quote_string(scratch_name)});",
        ]
        try:
            results = self.transport.run(script, branch=target)
        except DoltCommandError as exc:
            results = exc.results  # no scratch branch (the save failed before making it)
        return str(results[0][0]["h"]) if results and results[0] else None

    def _restage(self, status: Rows, branch: str | None) -> None:
        """Stage again what the user had staged: a fast-forward resets the staged set.

        A fast-forward fails when it would touch a table with uncommitted changes, so every
        table in ``status`` is one the save left alone. Only tables whose whole change was
        staged are re-added (re-adding a table with further unstaged edits would stage those
        too); names Dolt would read as options are left alone.
        """
        staged = {r["table_name"] for r in status if r.get("staged")}
        unstaged = {r["table_name"] for r in status if not r.get("staged")}
        again = sorted(t for t in staged - unstaged if not t.startswith("-"))
        if again:
            with contextlib.suppress(DoltCommandError):
                self.transport.run(
                    [f"CALL dolt_add({', '.join(map(quote_string, again))});"], branch=branch
                )

    def _remove_stale_branches(self, names: Sequence[str]) -> None:
        """Delete scratch branches of dead kedro-dolt processes (crash debris)."""
        for name in scratch.stale_branches(names):
            with contextlib.suppress(DoltCommandError):
                self.transport.run([f"CALL dolt_branch('-D', {quote_string(name)});"])

    # -- diffs --------------------------------------------------------------------------------

    def diff_stat(self, from_ref: str, to_ref: str, table: str) -> DiffStat:
        if from_ref == to_ref:
            return DiffStat()
        rows = self._read(
            [
                f"SET @kedro_dolt_a = {sql.hash_expression(validate_ref(from_ref))};",
                f"SET @kedro_dolt_b = {sql.hash_expression(validate_ref(to_ref))};",
                "SELECT * FROM dolt_diff_stat(@kedro_dolt_a, @kedro_dolt_b, "
                f"{quote_string(validate_table(table))});",
            ],
            what=f"Cannot diff {table!r} between {from_ref!r} and {to_ref!r}.",
        )
        return DiffStat.from_row(rows[0][0] if rows and rows[0] else None)

    def diff_rows(
        self, from_ref: str, to_ref: str, table: str, *, branch: str | None, limit: int
    ) -> pd.DataFrame:
        """The first ``limit`` changed rows (``dolt_diff``: to_*, from_*, diff_type), for
        display: values arrive as JSON types."""
        self.transport.require()
        what = f"Cannot diff {table!r} between {from_ref!r} and {to_ref!r}."
        with self.transport.lock(exclusive=False), translated(what):
            # dolt_diff takes literal refs only (a variable fails inside Dolt).
            ends = self.transport.run(
                [
                    f"SELECT {sql.hash_expression(validate_ref(from_ref))} AS a, "
                    f"{sql.hash_expression(validate_ref(to_ref))} AS b;"
                ],
                branch=branch,
            )[0][0]
            # JSON, not Parquet: Dolt's Parquet writer fails on the NULL keys of added rows.
            rows = self.transport.run(
                [
                    f"SELECT * FROM dolt_diff({quote_string(str(ends['a']))}, "
                    f"{quote_string(str(ends['b']))}, {quote_string(validate_table(table))}) "
                    f"LIMIT {int(limit)};"
                ],
                branch=branch,
            )
        changes = rows[0] if rows else []
        # Every key any row has (JSON drops NULLs), in one order whatever the transport.
        columns = sorted({key for row in changes for key in row})
        return pd.DataFrame(changes, columns=columns)

    def table_history(
        self, table: str, *, branch: str | None, limit: int | None = None
    ) -> list[LogEntry]:
        """Commits of ``branch`` that changed ``table``, newest first (``dolt_diff``)."""
        lim = f" LIMIT {int(limit)}" if limit else ""
        rows = self._read(
            [
                "SELECT commit_hash, committer, email, date, message FROM dolt_diff "
                f"WHERE table_name = {quote_string(validate_table(table))} "
                "AND commit_hash <> 'WORKING' AND commit_hash <> 'STAGED' "
                f"ORDER BY date DESC{lim};"
            ],
            branch=branch,
            what=f"Cannot read the history of {table!r}.",
        )
        return [LogEntry.from_row(r) for r in (rows[0] if rows else [])]

    def table_hash(self, table: str, *, ref: str, branch: str | None = None) -> str | None:
        """Dolt's content hash of ``table`` (schema + rows) at ``ref``; ``None`` if absent."""
        rows = self._read(
            [f"SELECT database() AS db, {sql.hash_expression(validate_ref(ref))} AS h;"],
            branch=branch,
            what=f"Unknown ref {ref!r} in {self.location}.",
        )
        database, commit = rows[0][0]["db"].split("/")[0], rows[0][0].get("h")
        if not commit:
            return None
        try:
            hashed = self._read(
                [
                    f"USE {quote_identifier(f'{database}/{commit}')};",
                    f"SELECT dolt_hashof_table({quote_string(validate_table(table))}) AS h;",
                ],
                what=f"Cannot hash table {table!r} at {ref!r}.",
            )
        except DoltError as exc:
            if "not found" in exc.dolt_message:
                return None
            raise
        return str(hashed[-1][0]["h"])

    # -- queries ------------------------------------------------------------------------------

    def query(self, sql_text: str, *, ref: str | None = None) -> QueryResult:
        """Run one read-only ``SELECT`` at ``ref`` (default: the checked-out branch's head).

        ``sql_text`` must pass :func:`~kedro_dolt.sql_policy.read_only_statement` (checked
        here too: the engine is the boundary). What runs is that statement, in the read-only
        revision database of the resolved commit (and, for the CLI, while Dolt can open the
        repository only read-only; see ``DoltProcess.run_query``).
        """
        from ..sql_policy import read_only_statement

        statement = read_only_statement(sql_text)
        self.transport.require()
        with (
            self.transport.lock(exclusive=False),
            translated(
                f"Query failed on {self.location} at {ref or 'HEAD'!r}.",
                "check the SQL (one read-only SELECT).",
            ),
        ):
            at = sql.hash_expression(validate_ref(ref or "HEAD"))
            info = self.transport.run([f"SELECT database() AS db, {at} AS h;"])[0][0]
            database = str(info["db"]).split("/")[0]
            table = self.transport.run_query(database, str(info["h"]), statement)
        if table is None:
            raise DoltError(
                "The query returned no result set.",
                fix="give one SELECT statement (statements that write are not allowed).",
            )
        return QueryResult(str(info["h"]), decode_table(table))


def engine_at(location: str) -> SQLEngine:
    """The engine this process built for ``location``; else the CLI engine of that path."""
    if location in _BUILT:
        return _BUILT[location]
    from .cli import DoltCLIEngine

    return DoltCLIEngine(location)


def _stopped(results: list[Rows]) -> Stopped | None:
    """Why a failed save script's guard stopped it (see :func:`.statements.save_script`),
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
