"""The server engine: the same scripts over a MySQL connection to a ``dolt sql-server``.

Chosen by Kedro ``credentials`` holding ``con: mysql://user:password@host:port``. A script runs
on one pooled connection whose session starts in the revision database ``db/branch`` (or ``db``
for the database's default branch). Rows to load go by ``LOAD DATA LOCAL INFILE`` when the
server allows it (``local_infile`` on), else in batched multi-row INSERTs. The server orders
concurrent writers itself: there is no file lock, and a save that loses a race (Dolt's 1213
serialization failure, or a target that moved before the fast-forward) is retried on a fresh
scratch branch.

Connections are pooled per process and never pickled: a ``ParallelRunner`` worker opens its
own. The password lives only in the address object; ``repr``, ``location`` and errors leave it
out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pyarrow as pa

from ..errors import DoltCommandError, DoltError
from ..naming import validate_branch
from . import scratch
from .codec import encode_tsv, null_text_columns, sql_values
from .messages import explain
from .mysql import (
    CONNECT_FIXES,
    LOCAL_INFILE_ROWS,
    LOST,
    POOL,
    ServerAddress,
    denied,
    error_parts,
    is_lost,
    pymysql_module,
    refused,
)
from .pipes import PipeFeed
from .sql import repository as sql_repository
from .sql.common import use as use_database
from .sql.saves import insert_rows, load_data
from .transport import Load, Rows, Statement, row_of


class ServerConnection:
    """Runs scripts over pooled connections to one database on a ``dolt sql-server``."""

    cheap_round_trips = True

    def __init__(
        self,
        address: ServerAddress,
        database: str,
        author: str | None = None,
        *,
        local_infile_rows: int = LOCAL_INFILE_ROWS,
    ) -> None:
        """``local_infile_rows``: from how many rows a load goes by ``LOAD DATA LOCAL``
        (when the server allows it) rather than by ``INSERT``."""
        self.address = address
        self.database = database
        self._author = author
        self._local_infile_rows = local_infile_rows
        self._local_infile: bool | None = None
        self._exists = False

    @property
    def location(self) -> str:
        return self.address.url(self.database)

    @property
    def keeps_negative_zero(self) -> bool:
        """Whether a saved ``-0.0`` stays so: only when every load goes by ``LOAD DATA``
        (small loads go by ``INSERT``, which stores ``0.0``; then so do all of them)."""
        return self._local_infile_rows <= 1 and self._uses_local_infile()

    @property
    def cache_dir(self) -> Path:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        where = f"{self.address.host}-{self.address.port}"
        name = hashlib.sha1(self.database.encode()).hexdigest()[:8]
        return root / "kedro-dolt" / "servers" / re.sub(r"[^\w.-]", "_", where) / name

    # -- the database -------------------------------------------------------------------

    def exists(self) -> bool:
        if self._exists:
            return True  # databases are not dropped under a pipeline; a miss is asked again
        self._exists = bool(self._run_plain(sql_repository.database_exists(self.database)))
        return self._exists

    def require(self) -> None:
        if not self.exists():
            raise DoltError(
                f"No database {self.database!r} on the Dolt server {self.address.url()}.",
                fix="save a dataset into it first (the first save creates it), or check the "
                "dataset's `database` name (`SHOW DATABASES` on the server).",
            )

    def ensure(self, initial_branch: str | None) -> None:
        """``CREATE DATABASE`` unless it exists; ``initial_branch`` made from its default."""
        if self.exists():
            return
        try:
            self._run_plain(sql_repository.create_database(self.database))
        except DoltCommandError as exc:
            raise self._error(exc, f"Cannot create database {self.database!r}") from exc
        if initial_branch:
            with contextlib.suppress(DoltCommandError):  # exists already (a race, or main)
                self.run(sql_repository.new_branch(initial_branch))

    def author(self) -> str | None:
        return self._author

    def lock(self, *, exclusive: bool) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # the server orders writers itself

    def clone(
        self,
        url: str,
        *,
        remote: str,
        user: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``dolt_clone`` ``url`` as the database, on the server (``env`` cannot reach it: a
        ``user``'s password is the server's own ``DOLT_REMOTE_PASSWORD``)."""
        try:
            self._run_plain(sql_repository.clone(url, remote, self.database, user))
        except DoltCommandError as exc:
            raise DoltError(
                f"Cannot clone {url} as database {self.database!r} on {self.address.url()}.",
                fix="check the remote url, that it holds a Dolt database, and that the "
                "server can reach it with its own credentials.",
                dolt_message=exc.dolt_message,
            ) from exc

    # -- running statements -------------------------------------------------------------

    def run(
        self,
        statements: Sequence[Statement],
        *,
        branch: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        return self._script(statements, branch, arrow=False)

    def run_arrow(self, statements: Sequence[str], *, branch: str | None = None) -> list[pa.Table]:
        return self._script(statements, branch, arrow=True)

    def run_read(
        self, statements: Sequence[str], rows_at: Callable[[str | None], str], *, branch: str | None
    ) -> list[pa.Table]:
        """The small results over the pooled connection; the rows at the commit they name,
        through connectorx when installed (Arrow straight from the wire, ~4x PyMySQL)."""
        head = self.run_arrow(statements, branch=branch)
        commit = str(head[0].column("h")[0].as_py())
        statement = rows_at(commit)
        return [*head, self.fetch_arrow(statement)]

    def fetch_arrow(self, statement: str) -> pa.Table:
        """One SELECT's rows as Arrow: connectorx if installed, else PyMySQL."""
        reader = _connectorx()
        if reader is None:
            return self.run_arrow([statement])[0]
        url = (
            f"mysql://{quote(self.address.user, safe='')}:{quote(self.address.password, safe='')}"
            f"@{self.address.host}:{self.address.port}/{quote(self.database, safe='')}"
        )
        try:
            return _as_table(reader.read_sql(url, statement.rstrip(";"), return_type="arrow"))
        except Exception:
            pass  # (outside this block: its message, url included, must not chain to ours)
        # Its binary protocol fails on some values Dolt holds (years before 1000 drop the
        # connection): read the text protocol, whose errors are classified and masked.
        return self.run_arrow([statement])[0]

    def run_query(self, database: str, revision: str, statement: str) -> pa.Table | None:
        script = [use_database(database, revision), statement]
        tables = self._script(script, None, arrow=True, use=False)
        return tables[0] if tables else None

    def _uses_local_infile(self) -> bool:
        if self._local_infile is None:
            rows = self._run_plain(sql_repository.LOCAL_INFILE)
            self._local_infile = bool(int(rows[0][0] or 0)) if rows else False
        return self._local_infile

    def _run_plain(self, statement: str) -> list[tuple[Any, ...]]:
        """One statement outside any database, on a connection from the pool."""
        connection, _ = POOL.take(self.address, False)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                rows = list(cursor.fetchall()) if cursor.description else []
        except Exception as exc:
            self._raise_failure(exc, connection, [])
        POOL.give(self.address, False, "", connection)
        return rows

    def _script(
        self, statements: Sequence[Statement], branch: str | None, *, arrow: bool, use: bool = True
    ) -> list[Any]:
        """``statements`` on one pooled session, in the database (or branch's revision
        database) unless ``use`` is false. A pooled session the server dropped while it was
        idle fails on the first ``USE``, where nothing was done yet: it is replaced, once."""
        local = any(isinstance(s, Load) for s in statements) and self._uses_local_infile()
        revision = validate_branch(branch) if branch else None
        where = (f"{self.database}/{revision}" if revision else self.database) if use else ""
        script = [use_database(self.database, revision), *statements] if use else [*statements]
        for attempt in (1, 2):
            connection, pooled = POOL.take(self.address, local, where)
            results: list[Any] = []
            try:
                self._execute(connection, script, results, local=local, arrow=arrow)
            except _Failed as failed:
                cause = failed.__cause__ or failed
                if attempt == 1 and pooled and failed.sent == 0 and is_lost(cause, connection):
                    with contextlib.suppress(Exception):
                        connection.close()
                    continue
                self._raise_failure(cause, connection, [] if arrow else results)
            POOL.give(self.address, local, where, connection)
            return results
        raise AssertionError("unreachable")

    def _execute(
        self,
        connection: Any,
        script: list[Statement],
        results: list[Any],
        *,
        local: bool,
        arrow: bool,
    ) -> None:
        """Run ``script``, appending each result set to ``results``. A failure is raised as
        :class:`_Failed` (with how many statements ran before it) from its cause."""
        sent = 0
        try:
            loads = any(isinstance(s, Load) for s in script)  # a temp dir only for rows
            places = scratch.temp_dir() if loads else contextlib.nullcontext("")
            with connection.cursor() as cursor, places as tmp:
                for i, statement in enumerate(script):
                    if isinstance(statement, Load):
                        self._load(connection, cursor, statement, local, Path(tmp) / f"{i}.tsv")
                    elif text := statement.strip().rstrip(";"):
                        cursor.execute(text)
                        if cursor.description:
                            results.append(_arrow(cursor) if arrow else _rows(cursor))
                    sent += 1
        except Exception as exc:
            raise _Failed(sent) from exc

    def _raise_failure(self, exc: BaseException, connection: Any, results: list[Rows]) -> NoReturn:
        """Raise what ``exc`` from ``connection`` means (the connection is closed: its
        session's state is unknown now): a lost connection or a refusal the user can act on
        as a ``DoltError`` with the fix, another refused statement as ``DoltCommandError``
        (``results``: those of the statements before it), anything else as it is."""
        lost = is_lost(exc, connection)
        with contextlib.suppress(Exception):
            connection.close()
        what = "The Dolt server refused or lost the session"
        code, message = error_parts(exc)
        if lost:
            message = message if code in LOST else f"{type(exc).__name__}: the connection closed"
            raise self._error(refused(2013, message, results), what) from exc
        if isinstance(exc, pymysql_module().err.MySQLError):
            error = refused(code, message, results)
            if code in CONNECT_FIXES or denied(code, message):
                raise self._error(error, what) from exc
            raise error from exc
        raise exc

    def _load(self, connection: Any, cursor: Any, load: Load, local: bool, path: Path) -> None:
        """Send ``load``'s rows: LOAD DATA LOCAL streamed through a named pipe for big loads
        when the server allows it, else multi-row INSERTs (faster for a few thousand rows)."""
        if local and len(load.frame) >= self._local_infile_rows:
            self._load_local(connection, cursor, load, path)
            return
        template = insert_rows(load.table, load.schema, replace=load.replace)
        columns = sql_values(load.frame, load.schema)
        step = 50_000  # bounds the Python objects alive at once; PyMySQL batches each slice
        for start in range(0, len(load.frame), step):
            rows = list(zip(*(c[start : start + step] for c in columns), strict=True))
            cursor.executemany(template, rows)

    def _load_local(self, connection: Any, cursor: Any, load: Load, path: Path) -> None:
        """LOAD DATA LOCAL INFILE of a named pipe a thread fills while PyMySQL sends it: the
        encoding overlaps the load, and no file of rows is written whole."""
        prefixed = null_text_columns(load.frame, load.schema)
        statement = load_data(
            load.table, load.schema, str(path), prefixed, replace=load.replace, local=True
        )
        feed = PipeFeed()
        feed.add(path, encode_tsv(load.frame, load.schema, prefixed))
        feed.start()
        connection.allowed_files = frozenset({str(path)})
        try:
            cursor.execute(statement)
        finally:
            connection.allowed_files = frozenset()
            feed.finish()
        if feed.error is not None:
            # The pipe ended early, so the load may hold part of the rows: the script stops
            # here, before anything is committed, and its scratch branch is discarded.
            error = feed.error
            if isinstance(error, DoltError):
                raise refused(0, error.what if not error.fix else f"{error.what} {error.fix}")
            raise refused(0, f"kedro-dolt stopped the load, so nothing was kept: {error}")
        # With LOCAL, a row Dolt cannot store (duplicate key, NULL key, bad value) is skipped
        # or zeroed with only a note, as in MySQL: any note fails the save.
        cursor.execute("SHOW WARNINGS LIMIT 5")
        notes = cursor.fetchall()
        if notes:
            messages = "; ".join(str(n[2]) for n in notes)
            raise pymysql_module().err.OperationalError(int(notes[0][1]), messages)

    def _error(self, exc: DoltCommandError, what: str) -> DoltError:
        code = exc.returncode
        if denied(code, exc.dolt_message):
            fix = (
                f"grant the user {self.address.user!r} the privileges kedro-dolt needs on "
                f"{self.database!r} (e.g. GRANT ALL ON `{self.database}`.* TO "
                f"'{self.address.user}'@'%'), or use another user."
            )
        elif code in LOST:
            fix = "check that the server still runs and is reachable, then run again."
        else:
            fix = CONNECT_FIXES.get(code) or explain(exc.dolt_message)
        return DoltError(f"{what} ({self.location}).", fix=fix, dolt_message=exc.dolt_message)


class _Failed(Exception):
    """A script failed after ``sent`` statements (its cause is the error)."""

    def __init__(self, sent: int) -> None:
        super().__init__(sent)
        self.sent = sent


def _rows(cursor: Any) -> Rows:
    """A result set in the transports' row form (see :data:`~.transport.Rows`)."""
    names = [d[0] for d in cursor.description]
    return [row_of(names, map(_value, row)) for row in cursor.fetchall()]


def _arrow(cursor: Any) -> pa.Table:
    """A result set as an Arrow table; column types follow the values (as Parquet's do)."""
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    arrays = []
    for values in columns:
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arrays.append(pa.array([None if v is None else str(v) for v in values]))
    return pa.Table.from_arrays(arrays, names=_unique(names))


def _connectorx() -> Any:
    try:
        import connectorx  # the `server` extra: optional, PyMySQL reads without it
    except ImportError:
        return None
    return connectorx


def _as_table(data: Any) -> pa.Table:
    """connectorx's Arrow result (a Table, or record batches in older releases)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    return pa.Table.from_batches(list(data))


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _value(value: Any) -> Any:
    """A result value as the CLI's JSON would give it (strings for times and decimals)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta, decimal.Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
