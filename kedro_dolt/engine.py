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
import ctypes
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import scratch
from .errors import DoltCommandError, DoltError
from .fingerprint import Delta, Fingerprint, FingerprintStore, delta
from .locking import repository_lock
from .naming import (
    parse_time_ref,
    quote_identifier,
    quote_string,
    validate_branch,
    validate_ref,
    validate_table,
)
from .schema import TableSchema, decode_table, load_data_statement, write_rows

T = TypeVar("T")

BINARY_ENV = "KEDRO_DOLT_BINARY"
#: ``save_args.mode``: the frame becomes the table / its rows are inserted / inserted or
#: replaced by primary key.
SAVE_MODES = ("overwrite", "append", "upsert")
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
    (
        "invalid ancestor spec",
        "the branch has fewer commits than the ref goes back (see `dolt log`): give a "
        "smaller ~N or a commit hash.",
    ),
    (
        "is not a commit",
        "give an existing branch, tag or commit hash (see `dolt branch -a`, `dolt tag`, "
        "`dolt log`).",
    ),
    ("unknown column", "the table's columns differ from what is written: check the names."),
    ("table not found", "check the table name, or save the dataset once before loading it."),
    ("could not be found", "check the column names in load_args.columns or the SQL."),
    (
        "read only",
        "another process holds the repository (e.g. a `dolt sql-server`): stop it "
        "or run kedro-dolt against that server.",
    ),
    (
        "would be stomped",
        "the table has uncommitted changes on that branch, which a save will not overwrite: "
        "commit them (`dolt add <table>; dolt commit -m ...`) or discard them "
        "(`dolt checkout <table>`), then save again.",
    ),
    (
        "no space left",
        "the disk holding the repository (or the temp dir) is full: free space and save again.",
    ),
    (
        "author identity",
        "configure Dolt: `dolt config --global --add user.name NAME` and "
        "`dolt config --global --add user.email EMAIL`.",
    ),
)


#: Lines of a Go panic's stack trace: frames, file positions, goroutine headers.
_GO_FRAME = re.compile(r"\.go:\d+|^\S+\(.*\)$|^created by |^goroutine \d+ \[|^panic: goroutine ")


def dolt_summary(message: str) -> str:
    """Dolt's message without a Go panic's stack trace (its frames say nothing to a user;
    the cause, e.g. ``fatal error: ... no space left on device``, stands among them)."""
    if "goroutine " not in message:
        return message.strip()
    lines = (line.strip() for line in message.splitlines())
    kept = [line for line in lines if line and not _GO_FRAME.search(line)]
    return "\n".join([*dict.fromkeys(kept), "(Dolt crashed; its Go stack trace is omitted)"])


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


#: Dolt's messages for an optimistic-concurrency failure: another process (a plain `dolt sql`
#: reader included) held the store for a moment. The statement changed nothing: try again.
_TRANSIENT = ("cannot update manifest", "database is read only", "serialization failure")
RETRY_ATTEMPTS = 6
RETRY_BASE_DELAY = 0.05  # seconds; doubled per attempt, with jitter


def is_transient(exc: DoltCommandError) -> bool:
    lowered = exc.dolt_message.lower()
    return any(fragment in lowered for fragment in _TRANSIENT)


def with_retries(attempt: Callable[[], T]) -> T:
    """Run ``attempt``; after a transient Dolt error, again with backoff (bounded)."""
    for tries in range(1, RETRY_ATTEMPTS + 1):
        try:
            return attempt()
        except DoltCommandError as exc:
            if tries == RETRY_ATTEMPTS or not is_transient(exc):
                raise
            time.sleep(RETRY_BASE_DELAY * 2 ** (tries - 1) * (1 + random.random()))
    raise AssertionError("unreachable")


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Runs in each ``dolt`` child before exec: the kernel kills it when its parent dies, so
    a killed Python process never leaves a `dolt` writing without kedro-dolt's lock."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_env() -> dict[str, str]:
    # Without it every dolt start leaves a detached `dolt send-metrics` process behind.
    return {**os.environ, "DOLT_DISABLE_EVENT_FLUSH": "1"}


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


#: Lists kedro-dolt's scratch branches (to find those of dead processes).
_SCRATCH_BRANCHES = (
    f"SELECT name FROM dolt_branches WHERE name LIKE {quote_string(scratch.BRANCH_PREFIX + '%')};"
)


def _parquet_results(data: bytes) -> list[pa.Table]:
    """The result sets of a ``dolt sql -r parquet`` script: one Parquet file per statement
    that returns rows, written back to back. A file ends with ``PAR1`` and the next starts
    with it; a boundary candidate that does not parse was inside the data."""
    buffer, tables, start = pa.py_buffer(data), [], 0
    while start < len(data):
        end = data.find(b"PAR1PAR1", start + 4)
        while True:
            stop = len(data) if end == -1 else end + 4
            try:
                tables.append(pq.read_table(pa.BufferReader(buffer[start:stop])))
                break
            except (pa.ArrowInvalid, OSError):
                if end == -1:
                    raise
                end = data.find(b"PAR1PAR1", end + 1)
        start = stop
    return tables


def _json_lines(out: bytes) -> list[dict[str, Any]]:
    """One ``{"rows": [...]}`` object per statement that returned rows (``{}`` for none)."""
    return [json.loads(line) for line in out.decode("utf-8").splitlines() if line.strip()]


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
    table_hash: str | None = None  # Dolt's content hash of the table after the save

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
    def remove_remote(self, name: str) -> None: ...
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
        mode: str = "overwrite",
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
                cmd,
                input=stdin,
                cwd=cwd or self.database,
                capture_output=True,
                check=False,
                env=_child_env(),
                preexec_fn=_die_with_parent,
            )
        except FileNotFoundError as exc:
            raise DoltError(f"Cannot run {cmd[0]!r}: {exc}.", fix=INSTALL_HINT) from exc
        if proc.returncode != 0:
            message = (proc.stderr or proc.stdout).decode("utf-8", "replace")
            raise DoltCommandError(
                list(args), proc.returncode, dolt_summary(message), stdout=proc.stdout
            )
        return proc.stdout

    def _sql(
        self,
        script: str,
        *,
        branch: str | None = None,
        fmt: str = "json",
        cwd: str | None = None,
        retry: bool = True,
    ) -> bytes:
        """Run a SQL script; ``retry`` repeats it after transient errors (only for scripts
        that change nothing when they fail, or whose every statement is idempotent)."""
        args = (["--branch", branch] if branch else []) + ["sql", "-r", fmt]
        # Scripts go on stdin: a -q argument is capped at 128 KiB by Linux.

        def run() -> bytes:
            return self._run(args, stdin=script.encode("utf-8"), cwd=cwd)

        return with_retries(run) if retry else run()

    def _sql_json(self, script: str, *, branch: str | None = None) -> list[list[dict[str, Any]]]:
        """Run ``script``; one list of rows per statement that returned rows.

        Dolt's JSON omits NULL values: read optional keys with ``.get``.
        """
        out = self._sql(script, branch=branch, fmt="json").decode("utf-8")
        # A statement with zero rows prints `{}`.
        return [json.loads(line).get("rows", []) for line in out.splitlines() if line.strip()]

    def _require(self) -> None:
        if not self.exists():
            self._check_directory()
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

    def _check_directory(self) -> None:
        """The database path and its existing parents must be directories, outside any
        repository's ``.dolt`` store."""
        if ".dolt" in self.database.parts:
            raise DoltError(
                f"The database path {self.database} is inside a `.dolt` directory, Dolt's own "
                "store.",
                fix="point `database` at the repository directory (the one holding .dolt), "
                "or at a path outside it.",
            )
        for path in (self.database, *self.database.parents):
            if path.exists():
                if not path.is_dir():
                    raise DoltError(
                        f"The database path {self.database} cannot be a Dolt repository: "
                        f"{path} is a file, not a directory.",
                        fix="point `database` at a directory: an existing Dolt repository, "
                        "or a path where the first save may create one.",
                    )
                return

    def ensure_repository(self, initial_branch: str | None = None) -> None:
        """``dolt init`` the database directory unless it already is a repository."""
        if self.exists():
            return
        self._check_directory()
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
        if parse_time_ref(validate_ref(start_point, key="start_point")):
            start_point = self.resolve(start_point)  # dolt_branch knows no X@{time}
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
        nothing; ``ours`` keeps ``into``'s cells; ``theirs`` takes ``source``'s. The merge is
        made and committed on a scratch branch from ``into``'s head, which ``into`` is then
        fast-forwarded to: the merge commit never takes the user's uncommitted work, and a
        failed merge leaves ``into`` as it was.
        """
        src, dst = quote_string(validate_ref(source)), quote_string(validate_branch(into))
        self._require()
        with repository_lock(self.database, exclusive=True):
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
        name = quote_string(scratch.branch_name("merge"))
        author, msg = quote_string(self.author()), quote_string(message)
        statements = [
            "SELECT dolt_hashof('HEAD') AS from_commit, active_branch() AS branch;",
            "SELECT table_name, staged, status FROM dolt_status;",
            "SET @kedro_dolt_branch = active_branch();",
            f"CALL dolt_branch({name});",
            f"CALL dolt_checkout({name});",
            # In one transaction: a conflicted merge is resolved and committed, or nothing is.
            "SET @@autocommit = 0;",
            f"CALL dolt_merge({quote_string(source)}, '-m', {msg}, '--author', {author});",
            f"CALL dolt_conflicts_resolve('--{on_conflict}', '.');" if conflicts else "",
            # The scratch branch holds nothing but the merge: -A takes only its result.
            f"CALL dolt_commit('-A', '--skip-empty', '-m', {msg}, '--author', {author});",
            "COMMIT;",
            "SET @@autocommit = 1;",
            "CALL dolt_checkout(@kedro_dolt_branch);",
            f"CALL dolt_merge('--ff-only', {name});",
            f"CALL dolt_branch('-D', {name});",
            "SELECT dolt_hashof('HEAD') AS to_commit;",
        ]
        try:
            out = self._sql("\n".join(s for s in statements if s), branch=into, retry=False)
        except DoltCommandError as exc:
            before, now = self._after_failed_script(
                f"merge {source!r} into {into!r}", into, name, exc, merges=2
            )
            return MergeResult(into, source, before, now, fast_forward=False)
        lines = _json_lines(out)
        merged = next(r for line in lines for r in line.get("rows", []) if "fast_forward" in r)
        result = MergeResult(
            into=into,
            source=source,
            from_commit=str(lines[0]["rows"][0]["from_commit"]),
            to_commit=str(lines[-1]["rows"][0]["to_commit"]),
            fast_forward=bool(int(merged.get("fast_forward") or 0)),
            conflicts=sum(conflicts.values()),
            resolved=on_conflict if conflicts else None,
        )
        if result.from_commit != result.to_commit:
            self._restage(lines[1].get("rows", []), into)
        return result

    def _merge_conflicts(
        self, src: str, dst: str, source: str, into: str
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Data and schema conflicts per table that merging ``src`` into ``dst`` would give."""
        with _translated(f"Cannot merge {source!r} into {into!r} in {self.database}."):
            rows = self._sql_json(
                f"SELECT * FROM dolt_preview_merge_conflicts_summary({dst}, {src});"
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

    def remove_remote(self, name: str) -> None:
        self._write(
            "CALL dolt_remote('remove', "
            f"{quote_string(validate_branch(name, key='remote name'))});",
            what=f"Cannot remove remote {name!r} from {self.database}.",
        )

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
            fix="check the remote's url (`dolt remote -v`), that it is reachable and holds a "
            "Dolt database, and its credentials.",
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
                # One dolt start: the commit, the schema, leftover scratch branches and the
                # rows, as four Parquet files back to back. No ORDER BY: Dolt scans a table
                # in primary-key order (its rows are stored clustered by key).
                wanted = ", ".join(map(quote_identifier, columns)) if columns else "*"
                lim = f" LIMIT {int(limit)}" if limit is not None else ""
                results = _parquet_results(
                    self._sql(
                        f"SELECT dolt_hashof({ref_sql}) AS h, active_branch() AS b;"
                        f"SHOW FULL COLUMNS FROM {table_sql} AS OF {ref_sql};"
                        f"{_SCRATCH_BRANCHES}"
                        f"SELECT {wanted} FROM {table_sql} AS OF {ref_sql}{lim};",
                        branch=branch,
                        fmt="parquet",
                    )
                )
        head, described, leftovers, rows = results
        start = head.to_pylist()[0]
        schema = TableSchema.from_show_columns(described.to_pylist()).select(columns)
        self._clear_debris([r["name"] for r in leftovers.to_pylist()])
        frame = decode_table(rows, schema)
        return TableRead(str(start["h"]), schema, frame, str(start.get("b") or ""))

    def _clear_debris(self, branches: Sequence[str]) -> None:
        """After a read: remove what crashed saves left (only when there is any)."""
        scratch.remove_stale_temp_dirs()
        if scratch.stale_branches(branches):
            with repository_lock(self.database, exclusive=True):
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
        An overwrite whose rows match the head's (by :mod:`kedro_dolt.fingerprint`) writes
        nothing; a small change of a keyed table writes only the changed rows.
        """
        validate_table(table)
        if mode not in SAVE_MODES:
            raise DoltError(f"Invalid save mode {mode!r}.", fix=f"use one of {SAVE_MODES}.")
        target = validate_branch(branch) if branch else None
        self.ensure_repository(initial_branch=target)
        author = self.author()
        scratch.remove_stale_temp_dirs()
        store = FingerprintStore(self.database)
        fingerprint = Fingerprint.of(frame, schema, schema.ddl(table))
        latest = store.latest(table)
        old: tuple[str, Fingerprint] | None = None  # (table hash, its fingerprint)
        if mode != "overwrite" or (latest and latest[1].same_rows(fingerprint)):
            # Modes check the schema; an unchanged-looking frame must match the head's rows.
            base = self._base(table, target)
            found = store.load(table, base.table_hash) if not base.dirty else None
            old = (str(base.table_hash), found) if found else None
            if mode == "overwrite" and found and found.same_rows(fingerprint):
                return CommitResult(base.branch, base.head, base.head, DiffStat())
            if mode != "overwrite" and base.schema and not base.schema.same_table(schema):
                raise DoltError(
                    f"Cannot {mode} into table {table!r}: the frame's columns, types or "
                    f"primary key {schema.names} ({list(schema.primary_key)}) differ from "
                    f"the table's {base.schema.names} ({list(base.schema.primary_key)}); "
                    "nothing was changed.",
                    fix="make the frame match the table, or save with mode overwrite to "
                    "replace the table and its schema.",
                )
        elif latest:
            old = latest  # planned optimistically: the script's guard checks the head's hash
        change = delta(old[1], fingerprint) if mode == "overwrite" and old else None
        finish = [
            f"CALL dolt_add({quote_string(table)});",
            *(_lineage_statements(table, *lineage) if lineage else []),
            f"CALL dolt_commit('--skip-empty', '--author', {quote_string(author)}, "
            f"'-m', {quote_string(message)});",
        ]
        with scratch.temp_dir() as tmp:
            if change is not None and old is not None:
                body = self._delta_body(table, frame, schema, change, old[0], Path(tmp))
                try:
                    result = self._save(table, schema, target, body + finish, tmp)
                except DoltError as exc:
                    if "kedro-dolt/stale-base" not in exc.dolt_message:
                        raise
                    # The table changed since it was fingerprinted: write all of it.
                else:
                    self._remember(store, table, result, old, fingerprint, mode)
                    return result
            path = Path(tmp) / "rows.tsv"
            prefixed = write_rows(path, frame, schema)
            load = load_data_statement(table, schema, str(path), prefixed, replace=mode == "upsert")
            if mode == "overwrite":
                create = [f"DROP TABLE IF EXISTS {quote_identifier(table)};", schema.ddl(table)]
            else:  # append and upsert keep the rows there (the schema was checked above)
                create = [schema.ddl(table).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")]
            create[-1] += ";"
            body = [*create, (load + ";") if len(frame) else ""]
            try:
                result = self._save(table, schema, target, body + finish, tmp)
            except DoltError as exc:
                if mode == "append" and "duplicate primary key" in exc.dolt_message:
                    raise DoltError(
                        f"{exc.what} save_args.mode append inserts new rows only, and a row "
                        "with one of these keys is already in the table.",
                        fix="use mode upsert to replace existing rows, or drop the rows "
                        "whose keys exist already.",
                        dolt_message=exc.dolt_message,
                    ) from exc
                raise
        self._remember(store, table, result, old, fingerprint, mode)
        return result

    def _save(
        self, table: str, schema: TableSchema, target: str | None, body: list[str], cwd: str
    ) -> CommitResult:
        with repository_lock(self.database, exclusive=True):
            return with_retries(
                lambda: self._commit_on_scratch(table, schema, target, body, cwd=cwd)
            )

    def _base(self, table: str, branch: str | None) -> TableBase:
        """What a save builds on: the head, the table's content hash there and whether it
        has uncommitted changes, and its schema (``None`` when there is no such table)."""
        name = quote_string(table)
        in_schema = f"TABLE_SCHEMA = database() AND TABLE_NAME = {name}"
        rows = self._read(
            "SELECT dolt_hashof('HEAD') AS head, active_branch() AS branch, "
            f"IF(EXISTS(SELECT 1 FROM information_schema.TABLES WHERE {in_schema}), "
            f"dolt_hashof_table({name}), NULL) AS table_hash, "
            f"(SELECT COUNT(*) FROM dolt_status WHERE table_name = {name}) AS dirty;"
            "SELECT COLUMN_NAME AS Field, COLUMN_TYPE AS Type, IS_NULLABLE AS `Null`, "
            "COLUMN_KEY AS `Key`, COLUMN_COMMENT AS Comment FROM information_schema.COLUMNS "
            f"WHERE {in_schema} ORDER BY ORDINAL_POSITION;",
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

    def _delta_body(
        self,
        table: str,
        frame: pd.DataFrame,
        schema: TableSchema,
        change: Delta,
        table_hash: str,
        tmp: Path,
    ) -> list[str]:
        """Statements that apply ``change`` on the scratch branch, after checking that the
        table there is still the one fingerprinted (else the script fails, changing nothing)."""
        name = quote_identifier(table)
        body = [
            f"SET @kedro_dolt_go = IF(dolt_hashof_table({quote_string(table)}) = "
            f"{quote_string(table_hash)}, active_branch(), 'kedro-dolt/stale-base');",
            "CALL dolt_checkout(@kedro_dolt_go);",
        ]
        if len(change.upserts):
            path = tmp / "upserts.tsv"
            prefixed = write_rows(path, frame.iloc[change.upserts], schema)
            body.append(load_data_statement(table, schema, str(path), prefixed, replace=True) + ";")
        if len(change.deletes):
            keys = schema.key_schema()
            path = tmp / "deletes.tsv"
            prefixed = write_rows(path, change.deletes, keys)
            gone = "kedro_dolt_deleted_keys"
            columns = ", ".join(map(quote_identifier, keys.primary_key))
            body += [
                keys.ddl(gone, temporary=True) + ";",
                load_data_statement(gone, keys, str(path), prefixed) + ";",
                f"DELETE FROM {name} WHERE ({columns}) IN (SELECT {columns} FROM {gone});",
                f"DROP TEMPORARY TABLE {gone};",
            ]
        return body

    def _remember(
        self,
        store: FingerprintStore,
        table: str,
        result: CommitResult,
        base: tuple[str, Fingerprint] | None,
        new: Fingerprint,
        mode: str,
    ) -> None:
        """Keep the fingerprint of the table as it now is (when it is known)."""
        if not result.table_hash:
            return
        old = base[1] if base else None
        if mode == "overwrite":
            store.save(table, result.table_hash, new)
        elif old is not None and mode == "append":
            store.save(table, result.table_hash, old.extended(new))
        elif old is not None and mode == "upsert":
            store.save(table, result.table_hash, old.upserted(new))

    def _commit_on_scratch(
        self,
        table: str,
        schema: TableSchema,
        target: str | None,
        body: Sequence[str],
        *,
        cwd: str,
    ) -> CommitResult:
        """Run ``body`` on a new scratch branch from ``target``'s head, fast-forward
        ``target`` to its commit, delete the scratch branch: one ``dolt`` start."""
        name = quote_string(scratch.branch_name("save"))
        key = quote_string(",".join(schema.primary_key))
        in_schema = f"TABLE_SCHEMA = database() AND TABLE_NAME = {quote_string(table)}"
        statements = [
            # 1-3: where the target stands, its working set, leftover scratch branches.
            "SELECT dolt_hashof('HEAD') AS from_commit, active_branch() AS branch;",
            "SELECT table_name, staged, status FROM dolt_status;",
            _SCRATCH_BRANCHES,
            "SET @kedro_dolt_from = dolt_hashof('HEAD');",
            "SET @kedro_dolt_branch = active_branch();",
            f"CALL dolt_branch({name});",
            f"CALL dolt_checkout({name});",
            # Old primary key: dolt_diff_stat cannot compare tables whose key changed.
            "SET @kedro_dolt_key = (SELECT IFNULL(GROUP_CONCAT(COLUMN_NAME ORDER BY "
            "ORDINAL_POSITION SEPARATOR ','), '') FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE {in_schema} AND CONSTRAINT_NAME = 'PRIMARY');",
            "SET @kedro_dolt_existed = (SELECT COUNT(*) FROM information_schema.TABLES "
            f"WHERE {in_schema});",
            *(s for s in body if s),
            "SET @kedro_dolt_to = dolt_hashof('HEAD');",
            f"SET @kedro_dolt_table_hash = dolt_hashof_table({quote_string(table)});",
            "CALL dolt_checkout(@kedro_dolt_branch);",
            # Atomic: the target moves to the new commit, or (e.g. when the table has
            # uncommitted changes there) the statement fails and nothing moves.
            f"CALL dolt_merge('--ff-only', {name});",
            f"CALL dolt_branch('-D', {name});",
            f"SET @kedro_dolt_diffable = @kedro_dolt_existed = 0 OR @kedro_dolt_key = {key};",
            "SET @kedro_dolt_stat_from = IF(@kedro_dolt_diffable, @kedro_dolt_from, "
            "@kedro_dolt_to);",
            "SELECT @kedro_dolt_from AS from_commit, dolt_hashof('HEAD') AS to_commit, "
            "@kedro_dolt_branch AS branch, @kedro_dolt_diffable AS diffable, "
            "@kedro_dolt_table_hash AS table_hash;",
            "SELECT * FROM dolt_diff_stat(@kedro_dolt_stat_from, @kedro_dolt_to, "
            f"{quote_string(table)});",
        ]
        try:
            out = self._sql("\n".join(statements), branch=target, cwd=cwd, retry=False)
        except DoltCommandError as exc:
            before, now = self._after_failed_script(f"save table {table!r}", target, name, exc)
            return CommitResult(target or "", before, now, DiffStat())
        lines = _json_lines(out)
        status, leftovers, result = lines[1], lines[2], lines[-2]["rows"][0]
        committed = result["from_commit"] != result["to_commit"]
        if committed:
            self._restage(status.get("rows", []), target)
        self._remove_stale_branches([r["name"] for r in leftovers.get("rows", [])])
        stats = DiffStat.from_row((lines[-1].get("rows") or [None])[0])
        if committed and not int(result.get("diffable") or 0):
            # The primary key changed: Dolt sees a new table, so every row is replaced.
            stats = self._replaced_rows(table, result["from_commit"], result["to_commit"])
        return CommitResult(
            result["branch"],
            result["from_commit"],
            result["to_commit"],
            stats,
            result.get("table_hash"),
        )

    def _replaced_rows(self, table: str, before: str, after: str) -> DiffStat:
        name = quote_identifier(table)
        rows = self._sql_json(
            f"SELECT (SELECT COUNT(*) FROM {name} AS OF {quote_string(before)}) AS old, "
            f"(SELECT COUNT(*) FROM {name} AS OF {quote_string(after)}) AS new;"
        )[0][0]
        return DiffStat(added=int(rows["new"]), deleted=int(rows["old"]))

    def _after_failed_script(
        self,
        action: str,
        target: str | None,
        scratch_sql: str,
        exc: DoltCommandError,
        *,
        merges: int = 1,
    ) -> tuple[str, str]:
        """Remove the scratch branch of a failed save or merge script and find out what
        happened: ``(head before, head now)`` when the target was fast-forwarded (the
        script's ``merges``-th merge) before a later statement failed; otherwise raise,
        saying "nothing was changed" only when the target's head is where it was."""
        ran = _json_lines(exc.stdout)
        before = ran[0]["rows"][0]["from_commit"] if ran and ran[0].get("rows") else None
        done = sum("fast_forward" in r for line in ran for r in line.get("rows", []))
        now = self._discard_scratch(scratch_sql, target)
        where = (
            f"branch {target!r} of {self.database}"
            if target
            else f"the checked-out branch of {self.database}"
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
            raise DoltError(
                f"Cannot {action} on {where}: its head moved from {before} to {now} "
                "meanwhile (another process committed).",
                fix="check `dolt log` of the branch, then run again.",
                dolt_message=exc.dolt_message,
            ) from exc
        if is_transient(exc):
            raise exc  # nothing changed: with_retries tries again
        raise DoltError(
            f"Cannot {action} on {where}; nothing was changed.",
            fix=explain(exc.dolt_message),
            dolt_message=exc.dolt_message,
        ) from exc

    def _discard_scratch(self, scratch_sql: str, target: str | None) -> str | None:
        """Delete a failed save's scratch branch; the target's head now (``None``: unknown)."""
        script = f"SELECT dolt_hashof('HEAD') AS h; CALL dolt_branch('-D', {scratch_sql});"
        try:
            out = self._sql(script, branch=target)
        except DoltCommandError as exc:
            out = exc.stdout  # no scratch branch (the save failed before making it)
        lines = _json_lines(out)
        return str(lines[0]["rows"][0]["h"]) if lines and lines[0].get("rows") else None

    def _restage(self, status: list[dict[str, Any]], branch: str | None) -> None:
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
                self._sql(f"CALL dolt_add({', '.join(map(quote_string, again))});", branch=branch)

    def _remove_stale_branches(self, names: Sequence[str]) -> None:
        """Delete scratch branches of dead kedro-dolt processes (crash debris)."""
        for name in scratch.stale_branches(names):
            with contextlib.suppress(DoltCommandError):
                self._sql(f"CALL dolt_branch('-D', {quote_string(name)});")

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

    # -- queries ------------------------------------------------------------------------------

    def query(self, sql: str, *, ref: str | None = None) -> QueryResult:
        """Run one read-only ``SELECT`` at ``ref`` (default: the checked-out branch's head).

        ``sql`` must pass :func:`~kedro_dolt.sql_policy.read_only_statement` (checked here
        too: the engine is the boundary). What runs is that statement, in the read-only
        revision database of the resolved commit, while Dolt can open the repository only
        read-only, from an empty scratch directory (the CLI's ``secure_file_priv``): if the
        check were ever fooled, the statement would still find nothing it can write.
        """
        from .sql_policy import read_only_statement, storage_read_only

        statement = read_only_statement(sql)
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
            with (
                storage_read_only(self.database),
                tempfile.TemporaryDirectory(prefix="kedro-dolt-query-") as scratch,
            ):
                data = self._sql(f"USE {revision};\n{statement};", fmt="parquet", cwd=scratch)
        if not data:
            raise DoltError(
                "The query returned no result set.",
                fix="give one SELECT statement (statements that write are not allowed).",
            )
        return QueryResult(str(info["h"]), decode_table(pq.read_table(BytesIO(data))))
