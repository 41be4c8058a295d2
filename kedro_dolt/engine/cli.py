"""The embedded engine: the ``dolt`` command line on a local repository directory.

Each script runs as one ``dolt --branch B sql`` process reading the statements on stdin;
rows to load go through a temp file and ``LOAD DATA INFILE``. Every process holds the
repository lock (:mod:`kedro_dolt.locking`): Dolt opens a repository read-only when another
process holds it.

doltcli 0.2.2 runs commands without stdin, decodes stdout as text (no Parquet), swallows
``init`` failures and misparses ``dolt log``/branch listings, so the binary is run directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from io import BytesIO
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from .. import scratch
from ..errors import DoltCommandError, DoltError
from ..locking import repository_lock
from ..naming import validate_branch
from ..schema import load_data_statement, write_rows
from .messages import dolt_summary, explain, translated, with_retries
from .operations import SQLEngine
from .transport import Load, Rows, Statement

BINARY_ENV = "KEDRO_DOLT_BINARY"
INSTALL_HINT = (
    "install Dolt with `make dolt` (scripts/install-dolt) or put `dolt` on PATH, "
    f"or set {BINARY_ENV} to the dolt executable"
)

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Runs in each ``dolt`` child before exec: the kernel kills it when its parent dies, so
    a killed Python process never leaves a `dolt` writing without kedro-dolt's lock."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # Without it every dolt start leaves a detached `dolt send-metrics` process behind.
    return {**os.environ, "DOLT_DISABLE_EVENT_FLUSH": "1", **(extra or {})}


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


def parquet_results(data: bytes) -> list[pa.Table]:
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


def json_results(out: bytes) -> list[Rows]:
    """One list of rows per statement that returned rows (``dolt sql -r json`` prints
    ``{"rows": [...]}`` per such statement, ``{}`` for none). Dolt's JSON omits NULL values:
    read optional keys with ``.get``."""
    lines = out.decode("utf-8", "replace").splitlines()
    results = []
    for line in lines:
        if line.strip():
            with contextlib.suppress(ValueError):  # a line cut short by a crash
                results.append(json.loads(line).get("rows", []))
    return results


class DoltProcess:
    """Runs scripts as ``dolt`` processes on the repository at ``database``."""

    # Commit identities per (repository, DOLT_ROOT_PATH, HOME): one `dolt config` per process.
    _authors: ClassVar[dict[tuple[str, str, str], str]] = {}

    def __init__(self, database: Path, binary: str | None = None) -> None:
        self.database = database
        self._binary = binary

    @property
    def location(self) -> str:
        return str(self.database)

    @property
    def key(self) -> str:
        return str(self.database)

    @property
    def cache_dir(self) -> Path:
        return self.database / ".kedro-dolt"

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_dolt_binary()
        return self._binary

    def command(
        self,
        args: Sequence[str],
        *,
        stdin: bytes | None = None,
        cwd: str | os.PathLike[str] | None = None,
        data_dir: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> bytes:
        """Run ``dolt ARGS``; its stdout, or ``DoltCommandError`` with its message."""
        cmd = [self.binary, *(["--data-dir", str(self.database)] if data_dir else []), *args]
        try:
            proc = subprocess.run(
                cmd,
                input=stdin,
                cwd=cwd or self.database,
                capture_output=True,
                check=False,
                env=child_env(env),
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
        branch: str | None,
        fmt: str,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> bytes:
        args = (["--branch", branch] if branch else []) + ["sql", "-r", fmt]
        # Scripts go on stdin: a -q argument is capped at 128 KiB by Linux.
        return self.command(args, stdin=script.encode("utf-8"), cwd=cwd, env=env)

    # -- the transport ------------------------------------------------------------------

    def run(
        self,
        statements: Sequence[Statement],
        *,
        branch: str | None = None,
        retry: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        """Run the statements in one ``dolt sql``; ``retry`` repeats it after transient
        errors (only for scripts that change nothing when they fail, or whose every
        statement is idempotent)."""

        def attempt() -> list[Rows]:
            with self._rendered(statements) as (script, cwd):
                try:
                    out = self._sql(script, branch=branch, fmt="json", cwd=cwd, env=env)
                except DoltCommandError as exc:
                    exc.results = json_results(exc.stdout)
                    raise
            return json_results(out)

        return with_retries(attempt) if retry else attempt()

    def run_arrow(self, statements: Sequence[str], *, branch: str | None = None) -> list[pa.Table]:
        return parquet_results(self._sql("\n".join(statements), branch=branch, fmt="parquet"))

    def run_read(
        self, statements: Sequence[str], rows_at: Callable[[str | None], str], *, branch: str | None
    ) -> list[pa.Table]:
        # One dolt start; under the shared lock nothing moves between the statements, so
        # the rows may be read at the ref as given.
        return self.run_arrow([*statements, rows_at(None)], branch=branch)

    def run_query(self, database: str, revision: str, statement: str) -> pa.Table | None:
        """One read-only statement in the revision database ``database/revision``, while
        Dolt can open the repository only read-only, from an empty scratch directory (the
        CLI's ``secure_file_priv``): if the statement policy were ever fooled, the statement
        would still find nothing it can write."""
        from ..naming import quote_identifier
        from ..sql_policy import storage_read_only

        use = f"USE {quote_identifier(f'{database}/{revision}')};"
        with (
            storage_read_only(self.database),
            tempfile.TemporaryDirectory(prefix="kedro-dolt-query-") as empty,
        ):
            data = self._sql(f"{use}\n{statement};", branch=None, fmt="parquet", cwd=empty)
        return pq.read_table(BytesIO(data)) if data else None

    @contextlib.contextmanager
    def _rendered(self, statements: Sequence[Statement]) -> Iterator[tuple[str, str | None]]:
        """The script's text; each :class:`Load` becomes a temp file and a LOAD DATA."""
        if not any(isinstance(s, Load) for s in statements):
            yield "\n".join(s for s in statements if isinstance(s, str) and s), None
            return
        with scratch.temp_dir() as tmp:
            lines = []
            for i, statement in enumerate(statements):
                if isinstance(statement, Load):
                    path = Path(tmp) / f"rows-{i}.tsv"
                    prefixed = write_rows(path, statement.frame, statement.schema)
                    statement = load_data_statement(
                        statement.table,
                        statement.schema,
                        str(path),
                        prefixed,
                        replace=statement.replace,
                    )
                    statement += ";"
                if statement:
                    lines.append(statement)
            yield "\n".join(lines), tmp

    # -- the repository -------------------------------------------------------------------

    def exists(self) -> bool:
        return (self.database / ".dolt").is_dir()

    def lock(self, *, exclusive: bool) -> AbstractContextManager[None]:
        return repository_lock(self.database, exclusive=exclusive)

    def require(self) -> None:
        if not self.exists():
            self._check_directory()
            raise DoltError(
                f"No Dolt repository at {self.database}.",
                fix="save a dataset into it first (the first save runs `dolt init`), "
                "or point `database` at an existing repository.",
            )

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

    def ensure(self, initial_branch: str | None) -> None:
        """``dolt init`` the database directory unless it already is a repository."""
        if self.exists():
            return
        self._check_directory()
        with repository_lock(self.database, exclusive=True):
            if self.exists():  # another process won the race
                return
            args = ["init"] + (["-b", validate_branch(initial_branch)] if initial_branch else [])
            with translated(
                f"Cannot create a Dolt repository at {self.database}.",
                "check the directory is writable.",
            ):
                self.command(args, data_dir=False)

    def author(self) -> str:
        """``Name <email>`` from Dolt's config (local over global) for commits made in SQL.

        ``CALL dolt_commit`` in ``dolt sql`` otherwise records the SQL user, root@localhost.
        """
        key = (str(self.database), os.environ.get("DOLT_ROOT_PATH", ""), os.environ.get("HOME", ""))
        if key not in self._authors:
            listed = self.command(["config", "--list"], data_dir=False).decode("utf-8")
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

    def clone(
        self,
        url: str,
        *,
        remote: str,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``dolt clone`` ``url`` into the database directory (which must not be a repo yet);
        ``user`` logs in with ``--user`` (the password comes in ``env``, never as an argument)."""
        created = not self.database.exists()
        with repository_lock(self.database, exclusive=True):
            if self.exists():  # another process cloned first
                return
            try:
                self.command(
                    [
                        "clone",
                        "--remote",
                        validate_branch(remote, key="remote name"),
                        *(["--user", user] if user is not None else []),
                        url,
                        ".",
                    ],
                    data_dir=False,
                    env=env,
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


class DoltCLIEngine(SQLEngine):
    """The ``dolt`` command line on a local repository directory (the embedded default).

    Cheap to build and picklable (it holds two strings); the binary is found at first use.
    """

    def __init__(self, database: str | os.PathLike[str], *, binary: str | None = None) -> None:
        self.database = Path(database).expanduser().absolute()
        self.process = DoltProcess(self.database, binary)
        super().__init__(self.process)

    def __repr__(self) -> str:
        return f"DoltCLIEngine({str(self.database)!r})"

    @property
    def binary(self) -> str:
        return self.process.binary

    def version(self) -> str:
        """The binary's version, e.g. ``1.86.4`` (from ``dolt version``'s first line)."""
        # Run outside the database: it may not exist yet, and the version needs no repository.
        out = self.process.command(["version"], cwd=tempfile.gettempdir(), data_dir=False)
        first = out.decode("utf-8", "replace").strip().splitlines()[0]
        return first.removeprefix("dolt version").strip()


__all__ = ["BINARY_ENV", "DoltCLIEngine", "DoltProcess", "find_dolt_binary"]
