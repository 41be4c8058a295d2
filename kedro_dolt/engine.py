"""The engine: every call kedro-dolt makes to Dolt goes through this module.

``DoltEngine`` is the contract the datasets and strategies use. ``DoltCLIEngine`` implements it
with the ``dolt`` binary on a local repository (the embedded default: no server needed); a
``dolt sql-server`` engine can implement the same protocol without touching the datasets.

Design notes (see docs/dolt-facts.md):

* Reads never use the working set or the checked-out branch: a ref is resolved to a commit hash
  and the table is read ``AS OF`` that hash, so loading never moves HEAD and sees committed
  data only.
* Writes run as one ``dolt --branch B sql`` script (DDL, ``LOAD DATA``, ``dolt_add``,
  ``dolt_commit --skip-empty``), so a save to any branch is one engine start, one commit at
  most, and never checks anything out. A failed script is rolled back table by table.
* Every invocation holds the repository lock (``locking.py``): Dolt opens a repository
  read-only when another process holds it.
* doltcli 0.2.2 runs commands without stdin, decodes stdout as text (no Parquet), swallows
  ``init`` failures and misparses ``dolt log``/branch listings of Dolt 2.x, so the engine runs
  the binary itself (doltcli is not a dependency).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pandas as pd
import pyarrow.parquet as pq

from .errors import DoltCommandError, DoltError
from .locking import repository_lock
from .naming import (
    parse_time_ref,
    quote_identifier,
    quote_string,
    validate_branch,
    validate_ref,
    validate_table,
)
from .schema import TableSchema, decode_table, encode_rows, load_data_statement

BINARY_ENV = "KEDRO_DOLT_BINARY"
#: ``(lineage_table, row)`` to add in a save's commit, or ``None``.
Lineage = tuple[str, dict[str, Any]] | None
INSTALL_HINT = (
    "install Dolt with `make dolt` (scripts/install-dolt) or put `dolt` on PATH, "
    f"or set {BINARY_ENV} to the dolt executable"
)

# Dolt's message fragment -> what the user should do about it.
_FIXES: tuple[tuple[str, str], ...] = (
    ("duplicate column", "column names must be unique, ignoring case: rename the columns."),
    (
        "would be overwritten",
        "make the save_args.primary_key columns unique (check df.duplicated(subset=primary_key)).",
    ),
    (
        "duplicate",
        "make the save_args.primary_key columns unique (check df.duplicated(subset=primary_key)).",
    ),
    ("non-nullable", "primary key columns must not hold missing values: drop or fill them."),
    ("cannot be null", "primary key columns must not hold missing values: drop or fill them."),
    (
        "is not a valid value",
        "the value cannot be stored in that column type: clean or "
        "convert the column (inf/-inf are not storable in Dolt).",
    ),
    ("out of range", "the value does not fit the column type: clean or convert the column."),
    (
        "branch not found",
        "check the branch/ref exists (`dolt branch -a`, `dolt tag`, "
        "`dolt log`) or create the branch.",
    ),
    ("database not found", "check the branch/ref exists (`dolt branch -a`, `dolt tag`)."),
    ("invalid ref", "give a branch, tag, commit hash or ancestor like 'main~1'."),
    ("table not found", "check the table name, or save the dataset once before loading it."),
    ("could not be found", "check the column names in load_args.columns or the SQL."),
    (
        "read only",
        "another process holds the repository (e.g. a `dolt sql-server`): stop it "
        "or run kedro-dolt against that server.",
    ),
    (
        "author identity",
        "configure Dolt: `dolt config --global --add user.name NAME` and "
        "`dolt config --global --add user.email EMAIL`.",
    ),
)


def explain(dolt_message: str, default: str = "") -> str:
    """The fix for a Dolt error message, from the table of known messages."""
    lowered = dolt_message.lower()
    for fragment, fix in _FIXES:
        if fragment in lowered:
            return fix
    return default


@contextlib.contextmanager
def _translated(what: str, fix: str = "") -> Iterator[None]:
    """Turn a failed ``dolt`` run into a ``DoltError``: what failed, the fix, Dolt's message."""
    try:
        yield
    except DoltCommandError as exc:
        raise DoltError(
            what, fix=explain(exc.dolt_message, fix), dolt_message=exc.dolt_message
        ) from exc


def _lineage_statements(table: str, lineage_table: str, row: dict[str, Any]) -> list[str]:
    """Create the lineage table if needed and add ``row``, only when ``table`` is staged."""
    from .metadata import LINEAGE_COLUMNS  # the lineage table's schema is metadata's

    name = quote_identifier(validate_table(lineage_table, key="meta table"))
    columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in LINEAGE_COLUMNS.items())
    names = ", ".join(quote_identifier(c) for c in LINEAGE_COLUMNS)
    values = ", ".join(
        "NULL" if row.get(c) is None else quote_string(str(row[c])) for c in LINEAGE_COLUMNS
    )
    return [
        f"CREATE TABLE IF NOT EXISTS {name} ({columns}, PRIMARY KEY (`id`));",
        f"INSERT INTO {name} ({names}) SELECT {values} FROM DUAL WHERE EXISTS "
        f"(SELECT 1 FROM dolt_status WHERE table_name = {quote_string(table)} AND staged);",
        f"CALL dolt_add({quote_string(lineage_table)});",
    ]


def _hash_expression(ref: str) -> str:
    """SQL for the commit hash of ``ref``; a ``X@{time}`` ref picks X's last commit by then."""
    timed = parse_time_ref(ref)
    if timed is None:
        return f"dolt_hashof({quote_string(ref)})"
    base, time = timed
    log = f"dolt_log({quote_string(base)})" if base else "dolt_log"
    return (
        f"(SELECT commit_hash FROM {log} WHERE date <= {quote_string(time)} "
        "ORDER BY date DESC LIMIT 1)"
    )


def find_dolt_binary() -> str:
    """The dolt executable: ``$KEDRO_DOLT_BINARY``, else ``dolt`` on PATH."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        if shutil.which(configured) is None:
            raise DoltError(
                f"{BINARY_ENV}={configured!r} is not an executable file.", fix=INSTALL_HINT
            )
        return configured
    found = shutil.which("dolt")
    if found is None:
        raise DoltError("The Dolt executable `dolt` was not found on PATH.", fix=INSTALL_HINT)
    return found


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

    @property
    def committed(self) -> bool:
        return self.from_commit != self.to_commit


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


class DoltEngine(Protocol):
    """What datasets and strategies need from Dolt. Implemented by each engine."""

    database: Path

    def exists(self) -> bool: ...
    def ensure_repository(self, initial_branch: str | None = None) -> None: ...
    def author(self) -> str: ...
    def active_branch(self) -> str: ...
    def branch_exists(self, branch: str) -> bool: ...
    def state(self) -> RepositoryState: ...
    def resolve(self, ref: str, *, branch: str | None = None) -> str: ...
    def create_branch(self, branch: str, start_point: str, *, exist_ok: bool = False) -> None: ...
    def delete_branch(self, branch: str) -> None: ...
    def merge(self, source: str, into: str, *, message: str, on_conflict: str) -> MergeResult: ...
    def find_run_commit(self, run_id: str, *, table: str, branch: str | None) -> str | None: ...
    def remotes(self) -> dict[str, str]: ...
    def add_remote(self, name: str, url: str) -> None: ...
    def clone(self, url: str, *, remote: str) -> None: ...
    def pull(self, remote: str, branch: str) -> MergeResult | None: ...
    def push(self, remote: str, branch: str) -> None: ...
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
        message: str,
        lineage: Lineage = None,
    ) -> CommitResult: ...
    def diff_stat(self, from_ref: str, to_ref: str, table: str) -> DiffStat: ...
    def diff_rows(
        self, from_ref: str, to_ref: str, table: str, *, branch: str | None, limit: int
    ) -> pd.DataFrame: ...
    def table_history(
        self, table: str, *, branch: str | None, limit: int | None = None
    ) -> list[LogEntry]: ...
    def table_hash(self, table: str, *, ref: str, branch: str | None = None) -> str | None: ...
    def query(self, sql: str, *, ref: str | None = None) -> QueryResult: ...


class DoltCLIEngine:
    """The ``dolt`` command line on a local repository directory.

    Cheap to build and picklable (it holds two strings); the binary is found at first use.
    """

    # Commit identities per (repository, DOLT_ROOT_PATH, HOME): one `dolt config` per process.
    _authors: ClassVar[dict[tuple[str, str, str], str]] = {}

    def __init__(self, database: str | os.PathLike[str], *, binary: str | None = None) -> None:
        self.database = Path(database).expanduser().absolute()
        self._binary = binary

    def __repr__(self) -> str:
        return f"DoltCLIEngine({str(self.database)!r})"

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_dolt_binary()
        return self._binary

    def version(self) -> str:
        """The binary's version, e.g. ``1.86.4`` (from ``dolt version``'s first line)."""
        # Run outside the database: it may not exist yet, and the version needs no repository.
        out = self._run(["version"], cwd=tempfile.gettempdir(), data_dir=False)
        first = out.decode("utf-8", "replace").strip().splitlines()[0]
        return first.removeprefix("dolt version").strip()

    # -- running dolt ---------------------------------------------------------------------

    def _run(
        self,
        args: Sequence[str],
        *,
        stdin: bytes | None = None,
        cwd: str | os.PathLike[str] | None = None,
        data_dir: bool = True,
    ) -> bytes:
        cmd = [self.binary, *(["--data-dir", str(self.database)] if data_dir else []), *args]
        try:
            proc = subprocess.run(
                cmd, input=stdin, cwd=cwd or self.database, capture_output=True, check=False
            )
        except FileNotFoundError as exc:
            raise DoltError(f"Cannot run {cmd[0]!r}: {exc}.", fix=INSTALL_HINT) from exc
        if proc.returncode != 0:
            message = (proc.stderr or proc.stdout).decode("utf-8", "replace")
            raise DoltCommandError(list(args), proc.returncode, message)
        return proc.stdout

    def _sql(
        self, script: str, *, branch: str | None = None, fmt: str = "json", cwd: str | None = None
    ) -> bytes:
        args = (["--branch", branch] if branch else []) + ["sql", "-r", fmt]
        # Scripts go on stdin: a -q argument is capped at 128 KiB by Linux.
        return self._run(args, stdin=script.encode("utf-8"), cwd=cwd)

    def _sql_json(self, script: str, *, branch: str | None = None) -> list[list[dict[str, Any]]]:
        """Run ``script``; one list of rows per statement that returned rows.

        Dolt's JSON omits NULL values: read optional keys with ``.get``.
        """
        out = self._sql(script, branch=branch, fmt="json").decode("utf-8")
        # A statement with zero rows prints `{}`.
        return [json.loads(line).get("rows", []) for line in out.splitlines() if line.strip()]

    def _require(self) -> None:
        if not self.exists():
            raise DoltError(
                f"No Dolt repository at {self.database}.",
                fix="save a dataset into it first (the first save runs `dolt init`), "
                "or point `database` at an existing repository.",
            )

    def _read(
        self, script: str, *, branch: str | None = None, what: str
    ) -> list[list[dict[str, Any]]]:
        self._require()
        with repository_lock(self.database, exclusive=False), _translated(what):
            return self._sql_json(script, branch=branch)

    # -- repository -------------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.database / ".dolt").is_dir()

    def ensure_repository(self, initial_branch: str | None = None) -> None:
        """``dolt init`` the database directory unless it already is a repository."""
        if self.exists():
            return
        with repository_lock(self.database, exclusive=True):
            if self.exists():  # another process won the race
                return
            args = ["init"] + (["-b", validate_branch(initial_branch)] if initial_branch else [])
            with _translated(
                f"Cannot create a Dolt repository at {self.database}.",
                "check the directory is writable.",
            ):
                self._run(args, data_dir=False)

    def author(self) -> str:
        """``Name <email>`` from Dolt's config (local over global) for commits made in SQL.

        ``CALL dolt_commit`` in ``dolt sql`` otherwise records the SQL user, root@localhost.
        """
        key = (str(self.database), os.environ.get("DOLT_ROOT_PATH", ""), os.environ.get("HOME", ""))
        if key not in self._authors:
            listed = self._run(["config", "--list"], data_dir=False).decode("utf-8")
            config: dict[str, str] = {}
            for line in listed.splitlines():  # local entries come first and win
                name, sep, value = line.partition(" = ")
                if sep:
                    config.setdefault(name.strip(), value.strip())
            if not config.get("user.name") or not config.get("user.email"):
                raise DoltError(
                    "Dolt has no commit identity (user.name / user.email).",
                    fix=explain("author identity"),
                )
            self._authors[key] = f"{config['user.name']} <{config['user.email']}>"
        return self._authors[key]

    def active_branch(self) -> str:
        rows = self._read(
            "SELECT active_branch() AS b;", what="Cannot read the checked-out branch."
        )
        return str(rows[0][0]["b"])

    def branch_exists(self, branch: str) -> bool:
        return validate_branch(branch) in self.state().heads

    def state(self) -> RepositoryState:
        rows = self._read(
            "SELECT active_branch() AS b;"
            "SELECT name, hash, dirty FROM dolt_branches;"
            "SELECT table_name, staged, status FROM dolt_status;",
            what=f"Cannot read the state of {self.database}.",
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
            f"SELECT {_hash_expression(validate_ref(ref))} AS h;",
            branch=branch,
            what=f"Unknown ref {ref!r} in {self.database}.",
        )
        found = rows[0][0].get("h") if rows and rows[0] else None
        if not found:
            raise DoltError(
                f"Ref {ref!r} names no commit in {self.database}.",
                fix="for a time ref, give a time after the branch's first commit (UTC).",
            )
        return str(found)

    def create_branch(self, branch: str, start_point: str, *, exist_ok: bool = False) -> None:
        try:
            self._write(
                f"CALL dolt_branch({quote_string(validate_branch(branch))}, "
                f"{quote_string(validate_ref(start_point, key='start_point'))});",
                what=f"Cannot create branch {branch!r} from {start_point!r}.",
            )
        except DoltError as exc:
            # Two nodes may race to create the same branch: the loser finds it there.
            if not (exist_ok and "already exists" in exc.dolt_message):
                raise

    def delete_branch(self, branch: str) -> None:
        self._write(
            f"CALL dolt_branch('-D', {quote_string(validate_branch(branch))});",
            what=f"Cannot delete branch {branch!r}.",
        )

    def merge(self, source: str, into: str, *, message: str, on_conflict: str) -> MergeResult:
        """Merge ``source`` into branch ``into`` (fast-forward when possible).

        ``on_conflict``: ``fail`` raises ``DoltError`` listing the conflicting keys and changes
        nothing; ``ours`` keeps ``into``'s cells; ``theirs`` takes ``source``'s.
        """
        src, dst = quote_string(validate_ref(source)), quote_string(validate_branch(into))
        author = quote_string(self.author())
        self._require()
        with repository_lock(self.database, exclusive=True):
            conflicts = self._merge_conflicts(src, dst, source, into)
            if conflicts and on_conflict == "fail":
                keys = {t: self._conflicting_keys(src, dst, t) for t in sorted(conflicts)}
                raise DoltError(
                    f"Merging {source!r} into {into!r} conflicts; conflicting keys by table: "
                    f"{keys}. Nothing was merged and {into!r} is unchanged.",
                    fix="resolve the conflict in the data, or set on_conflict: ours (keep "
                    f"{into!r}'s values) or on_conflict: theirs (keep the new data).",
                )
            resolve = "".join(
                f"CALL dolt_conflicts_resolve('--{on_conflict}', {quote_string(t)});"
                for t in sorted(conflicts)
            )
            # In one transaction: a conflicted merge is resolved and committed, or nothing is.
            script = (
                "SET @@autocommit = 0;"
                "SELECT dolt_hashof('HEAD') AS h;"
                f"CALL dolt_merge({src}, '-m', {quote_string(message)}, '--author', {author});"
                f"{resolve}"
                f"CALL dolt_commit('-A', '--skip-empty', '-m', {quote_string(message)}, "
                f"'--author', {author});"
                "COMMIT;"
                "SELECT dolt_hashof('HEAD') AS h;"
            )
            with _translated(
                f"Cannot merge {source!r} into {into!r} in {self.database}; {into!r} is unchanged."
            ):
                rows = self._sql_json(script, branch=into)
        merged = rows[1][0]
        return MergeResult(
            into=into,
            source=source,
            from_commit=str(rows[0][0]["h"]),
            to_commit=str(rows[-1][0]["h"]),
            fast_forward=bool(int(merged.get("fast_forward") or 0)),
            conflicts=sum(conflicts.values()),
            resolved=on_conflict if conflicts else None,
        )

    def _merge_conflicts(self, src: str, dst: str, source: str, into: str) -> dict[str, int]:
        with _translated(f"Cannot merge {source!r} into {into!r} in {self.database}."):
            rows = self._sql_json(
                f"SELECT * FROM dolt_preview_merge_conflicts_summary({dst}, {src});"
            )
        return {
            r["table"]: int(r.get("num_data_conflicts") or 0)
            + int(r.get("num_schema_conflicts") or 0)
            for r in (rows[0] if rows else [])
        }

    def _conflicting_keys(self, src: str, dst: str, table: str) -> list[Any]:
        try:
            rows = self._sql_json(
                f"SELECT * FROM dolt_preview_merge_conflicts({dst}, {src}, {quote_string(table)});"
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

    def find_run_commit(self, run_id: str, *, table: str, branch: str | None) -> str | None:
        """The newest commit on ``branch`` whose trailers name Kedro run ``run_id`` and
        ``table``; ``None`` when that run made no commit of the table there."""
        from .commits import parse_trailers  # commit messages are commits.py's format

        source = f"dolt_log({quote_string(validate_branch(branch))})" if branch else "dolt_log"
        like = quote_string(f"%Kedro-Run-Id: {run_id}%")
        rows = self._read(
            f"SELECT commit_hash, message FROM {source} WHERE message LIKE {like};",
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
            f"CALL dolt_tag({', '.join(map(quote_string, args))});",
            what=f"Cannot tag {ref!r} as {name!r}.",
        )

    def tags(self) -> dict[str, str]:
        """Tag name -> the commit it names."""
        rows = self._read("SELECT tag_name, tag_hash FROM dolt_tags;", what="Cannot list tags.")
        return {r["tag_name"]: r["tag_hash"] for r in (rows[0] if rows else [])}

    def log(self, ref: str | None = None, limit: int | None = None) -> list[LogEntry]:
        """Commits reachable from ``ref`` (default: the checked-out branch), newest first."""
        source = f"dolt_log({quote_string(validate_ref(ref))})" if ref else "dolt_log"
        lim = f" LIMIT {int(limit)}" if limit else ""
        rows = self._read(
            f"SELECT commit_hash, committer, email, date, message FROM {source}{lim};",
            what=f"Cannot read the log of {ref or 'the checked-out branch'!r}.",
        )
        return [LogEntry.from_row(r) for r in (rows[0] if rows else [])]

    def _write(
        self, script: str, *, what: str, branch: str | None = None, fix: str = ""
    ) -> list[list[dict[str, Any]]]:
        self._require()
        with repository_lock(self.database, exclusive=True), _translated(what, fix):
            return self._sql_json(script, branch=branch)

    # -- remotes ------------------------------------------------------------------------------

    def remotes(self) -> dict[str, str]:
        rows = self._read("SELECT name, url FROM dolt_remotes;", what="Cannot list remotes.")
        return {r["name"]: r["url"] for r in (rows[0] if rows else [])}

    def add_remote(self, name: str, url: str) -> None:
        self._write(
            f"CALL dolt_remote('add', {quote_string(validate_branch(name, key='remote name'))}, "
            f"{quote_string(url)});",
            what=f"Cannot add remote {name!r} ({url}) to {self.database}.",
            fix="check the remote url: file:///abs/dir must be a creatable directory; "
            "https://, aws:// and gs:// remotes need their credentials (see the README).",
        )

    def clone(self, url: str, *, remote: str) -> None:
        """``dolt clone`` ``url`` into the database directory (which must not be a repo yet)."""
        created = not self.database.exists()
        with repository_lock(self.database, exclusive=True):
            if self.exists():  # another process cloned first
                return
            try:
                self._run(
                    ["clone", "--remote", validate_branch(remote, key="remote name"), url, "."],
                    data_dir=False,
                )
            except DoltCommandError as exc:
                if created:
                    shutil.rmtree(self.database, ignore_errors=True)
                raise DoltError(
                    f"Cannot clone {url} into {self.database}.",
                    fix="check the remote url and that it holds a Dolt database "
                    "(file:///abs/path, https://doltremoteapi.dolthub.com/org/repo, aws://, gs://).",
                    dolt_message=exc.dolt_message,
                ) from exc

    def pull(self, remote: str, branch: str) -> MergeResult | None:
        """Fetch ``remote`` and merge its ``branch`` into the local one (created if missing).

        ``None`` when the remote has no such branch yet. A conflict raises ``DoltError`` and
        merges nothing.
        """
        name = quote_string(validate_branch(remote, key="remote name"))
        tracking = f"{remote}/{validate_branch(branch)}"
        rows = self._write(
            f"CALL dolt_fetch({name});"
            "SELECT name FROM dolt_remote_branches "
            f"WHERE name = {quote_string('remotes/' + tracking)};"
            f"SELECT name FROM dolt_branches WHERE name = {quote_string(branch)};",
            what=f"Cannot fetch from remote {remote!r} of {self.database}.",
        )
        has_remote_branch, has_local_branch = bool(rows[1]), bool(rows[2])
        if not has_remote_branch:
            return None
        if not has_local_branch:
            self.create_branch(branch, tracking, exist_ok=True)
            head = self.resolve(branch)
            return MergeResult(branch, tracking, head, head, fast_forward=True)
        return self.merge(
            tracking, branch, message=f"kedro-dolt: pull {tracking}", on_conflict="fail"
        )

    def push(self, remote: str, branch: str) -> None:
        """``dolt_push`` ``branch`` to ``remote``; a rejection raises ``DoltError`` whose
        ``dolt_message`` says "rejected" (never forced)."""
        self._write(
            f"CALL dolt_push({quote_string(validate_branch(remote, key='remote name'))}, "
            f"{quote_string(validate_branch(branch))});",
            what=f"Cannot push {branch!r} to remote {remote!r}.",
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
                f"SHOW TABLES AS OF {quote_string(validate_ref(ref))};", branch=branch, what=""
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
        table_sql, ref_sql = quote_identifier(validate_table(table)), quote_string(ref)
        self._require()
        with repository_lock(self.database, exclusive=False):
            where = f"table {table!r} at ref {ref!r}" + (f" (branch {branch!r})" if branch else "")
            with _translated(f"Cannot load {where} from {self.database}."):
                meta = self._sql_json(
                    f"SELECT dolt_hashof({ref_sql}) AS h, active_branch() AS b;"
                    f"SHOW FULL COLUMNS FROM {table_sql} AS OF {ref_sql};",
                    branch=branch,
                )
                commit = str(meta[0][0]["h"])
                schema = TableSchema.from_show_columns(meta[1]).select(columns)
                order = (
                    " ORDER BY " + ", ".join(map(quote_identifier, schema.primary_key))
                    if schema.primary_key
                    else ""
                )
                lim = f" LIMIT {int(limit)}" if limit is not None else ""
                select = ", ".join(map(quote_identifier, schema.names))
                data = self._sql(
                    f"SELECT {select} FROM {table_sql} AS OF {quote_string(commit)}{order}{lim};",
                    fmt="parquet",
                )
        frame = decode_table(pq.read_table(BytesIO(data)), schema)
        return TableRead(commit, schema, frame, str(meta[0][0].get("b") or ""))

    def write_table(
        self,
        table: str,
        frame: pd.DataFrame,
        *,
        schema: TableSchema,
        branch: str | None,
        message: str,
        lineage: Lineage = None,
    ) -> CommitResult:
        """Make ``frame`` the whole content of ``table`` on ``branch`` in at most one commit.

        ``branch=None`` writes to the checked-out branch. Nothing is checked out. Identical
        content makes no commit. On failure the table is restored and ``DoltError`` raised.
        ``lineage=(lineage_table, row)`` adds ``row`` to that table in the same commit, only
        when ``table`` changed (so an unchanged save still makes no commit).
        """
        table_sql = quote_identifier(validate_table(table))
        branch_args = validate_branch(branch) if branch else None
        rows = encode_rows(frame, schema)  # before the lock: pure CPU work
        self.ensure_repository(initial_branch=branch)
        author = self.author()
        with (
            repository_lock(self.database, exclusive=True),
            tempfile.TemporaryDirectory(prefix="kedro-dolt-") as tmp,
        ):
            # LOAD DATA only reads files under the working directory of the dolt process.
            path = Path(tmp) / "rows.tsv"
            path.write_bytes(rows)
            statements = [
                "SET @kedro_dolt_from = dolt_hashof('HEAD');",
                f"DROP TABLE IF EXISTS {table_sql};",
                schema.ddl(table) + ";",
                (load_data_statement(table, schema, str(path)) + ";") if rows else "",
                f"CALL dolt_add({quote_string(table)});",
                *(_lineage_statements(table, *lineage) if lineage else []),
                f"CALL dolt_commit('--skip-empty', '--author', {quote_string(author)}, "
                f"'-m', {quote_string(message)});",
                "SET @kedro_dolt_to = dolt_hashof('HEAD');",
                "SELECT @kedro_dolt_from AS from_commit, @kedro_dolt_to AS to_commit, "
                "active_branch() AS branch;",
                "SELECT * FROM dolt_diff_stat(@kedro_dolt_from, @kedro_dolt_to, "
                f"{quote_string(table)});",
            ]
            try:
                out = self._sql("\n".join(s for s in statements if s), branch=branch_args, cwd=tmp)
            except DoltCommandError as exc:
                self._restore_table(table, branch_args)
                raise DoltError(
                    f"Cannot save table {table!r} to branch "
                    f"{branch or '(checked out)'!r} of {self.database}; nothing was changed.",
                    fix=explain(exc.dolt_message),
                    dolt_message=exc.dolt_message,
                ) from exc
        lines = [line for line in out.decode("utf-8").splitlines() if line.strip()]
        *_, head, stats = (json.loads(line) for line in lines)
        result = head["rows"][0]
        return CommitResult(
            result["branch"],
            result["from_commit"],
            result["to_commit"],
            DiffStat.from_row((stats.get("rows") or [None])[0]),
        )

    def diff_stat(self, from_ref: str, to_ref: str, table: str) -> DiffStat:
        if from_ref == to_ref:
            return DiffStat()
        rows = self._read(
            f"SET @kedro_dolt_a = {_hash_expression(validate_ref(from_ref))};"
            f"SET @kedro_dolt_b = {_hash_expression(validate_ref(to_ref))};"
            "SELECT * FROM dolt_diff_stat(@kedro_dolt_a, @kedro_dolt_b, "
            f"{quote_string(validate_table(table))});",
            what=f"Cannot diff {table!r} between {from_ref!r} and {to_ref!r}.",
        )
        return DiffStat.from_row(rows[0][0] if rows and rows[0] else None)

    def diff_rows(
        self, from_ref: str, to_ref: str, table: str, *, branch: str | None, limit: int
    ) -> pd.DataFrame:
        """The first ``limit`` changed rows (``dolt_diff``: to_*, from_*, diff_type), for
        display: values arrive as JSON types."""
        self._require()
        what = f"Cannot diff {table!r} between {from_ref!r} and {to_ref!r}."
        with repository_lock(self.database, exclusive=False), _translated(what):
            # dolt_diff takes literal refs only (a variable fails inside Dolt).
            ends = self._sql_json(
                f"SELECT {_hash_expression(validate_ref(from_ref))} AS a, "
                f"{_hash_expression(validate_ref(to_ref))} AS b;",
                branch=branch,
            )[0][0]
            # JSON, not Parquet: Dolt's Parquet writer fails on the NULL keys of added rows.
            rows = self._sql_json(
                f"SELECT * FROM dolt_diff({quote_string(str(ends['a']))}, "
                f"{quote_string(str(ends['b']))}, {quote_string(validate_table(table))}) "
                f"LIMIT {int(limit)};",
                branch=branch,
            )
        changes = rows[0] if rows else []
        columns = list(dict.fromkeys(key for row in changes for key in row))  # JSON drops NULLs
        return pd.DataFrame(changes, columns=columns)

    def table_history(
        self, table: str, *, branch: str | None, limit: int | None = None
    ) -> list[LogEntry]:
        """Commits of ``branch`` that changed ``table``, newest first (``dolt_diff``)."""
        lim = f" LIMIT {int(limit)}" if limit else ""
        rows = self._read(
            "SELECT commit_hash, committer, email, date, message FROM dolt_diff "
            f"WHERE table_name = {quote_string(validate_table(table))} "
            f"AND commit_hash <> 'WORKING' AND commit_hash <> 'STAGED' ORDER BY date DESC{lim};",
            branch=branch,
            what=f"Cannot read the history of {table!r}.",
        )
        return [LogEntry.from_row(r) for r in (rows[0] if rows else [])]

    def table_hash(self, table: str, *, ref: str, branch: str | None = None) -> str | None:
        """Dolt's content hash of ``table`` (schema + rows) at ``ref``; ``None`` if absent."""
        rows = self._read(
            f"SELECT database() AS db, {_hash_expression(validate_ref(ref))} AS h;",
            branch=branch,
            what=f"Unknown ref {ref!r} in {self.database}.",
        )
        database, commit = rows[0][0]["db"].split("/")[0], rows[0][0].get("h")
        if not commit:
            return None
        try:
            hashed = self._read(
                f"USE {quote_identifier(f'{database}/{commit}')};"
                f"SELECT dolt_hashof_table({quote_string(validate_table(table))}) AS h;",
                what=f"Cannot hash table {table!r} at {ref!r}.",
            )
        except DoltError as exc:
            if "not found" in exc.dolt_message:
                return None
            raise
        return str(hashed[-1][0]["h"])

    def _restore_table(self, table: str, branch: str | None) -> None:
        """Undo a failed save's working-set changes to ``table`` (and only to it)."""
        name = quote_string(table)
        # Separately: dolt_reset fails on a table that was never staged, and dolt_checkout
        # fails on one that exists nowhere (the failed script then changed nothing).
        for statement in (f"CALL dolt_reset({name});", f"CALL dolt_checkout({name});"):
            with contextlib.suppress(DoltCommandError):
                self._sql(statement, branch=branch)

    # -- queries ------------------------------------------------------------------------------

    def query(self, sql: str, *, ref: str | None = None) -> QueryResult:
        """Run one read-only ``SELECT`` at ``ref`` (default: the checked-out branch's head).

        The query runs in the read-only revision database of the resolved commit, so it sees
        committed data only and cannot change anything.
        """
        self._require()
        with (
            repository_lock(self.database, exclusive=False),
            _translated(
                f"Query failed on {self.database} at {ref or 'HEAD'!r}.",
                "check the SQL (one read-only SELECT).",
            ),
        ):
            at = _hash_expression(validate_ref(ref or "HEAD"))
            info = self._sql_json(f"SELECT database() AS db, {at} AS h;")[0][0]
            revision = quote_identifier(f"{info['db']}/{info['h']}")
            data = self._sql(f"USE {revision};\n{sql.strip().rstrip(';')};", fmt="parquet")
        if not data:
            raise DoltError(
                "The query returned no result set.",
                fix="give one SELECT statement (statements that write are not allowed).",
            )
        return QueryResult(str(info["h"]), decode_table(pq.read_table(BytesIO(data))))
