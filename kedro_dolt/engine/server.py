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
import select
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import scratch
from ..errors import DoltCommandError, DoltError
from ..naming import quote_identifier, quote_string, validate_branch
from ..schema import TableSchema, encode_rows, load_data_statement, null_text_columns
from .cli_io import PipeWriter
from .messages import explain, with_retries
from .operations import SQLEngine
from .transport import Load, Rows, Statement

DEFAULT_PORT = 3306
_SCHEMES = ("mysql", "mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector")
#: MySQL error numbers the user can act on, with the fix.
_CONNECT_FIXES = {
    1045: "check the user and password in the credentials' con url.",
    2003: "check the host and port in the credentials' con url, and that `dolt sql-server` "
    "runs there (e.g. `dolt sql-server --host 0.0.0.0 --port 3306`).",
    2005: "check the host name in the credentials' con url.",
}
_PRIVILEGE_ERRORS = (1044, 1142, 1143, 1227, 1370)
#: Dolt reports missing privileges as error 1105 with these messages.
_PRIVILEGE_MESSAGES = ("access denied for user", "command denied to user")
_TRANSIENT_ERRNOS = (1213,)
_LOST = (2006, 2013)
#: Rows from which a load goes by LOAD DATA LOCAL INFILE (when allowed) rather than INSERTs.
LOCAL_INFILE_ROWS = 20_000
#: Idle sessions a process keeps open on servers, at most.
MAX_IDLE = 16


@dataclass(frozen=True)
class ServerAddress:
    """Where the server is and who connects; the password is never shown."""

    host: str
    port: int
    user: str
    password: str = field(repr=False, default="")

    @classmethod
    def from_con(cls, con: str) -> ServerAddress:
        """Parse ``mysql://user:password@host:port`` (a path, if any, is ignored: the
        dataset's ``database`` names the database).

        The password may be written as it is (``/``, ``#``, ``?``, ``@``, ``:`` and
        non-ASCII letters included) or percent-encoded. No error, and no exception chained
        to it, shows any part of ``con``: it holds the password."""
        if not isinstance(con, str) or "://" not in con:
            raise DoltError(
                "Invalid credentials: `con` must be a url like mysql://user:password@host:3306.",
                fix="set con: mysql://USER:${oc.env:DOLT_PASSWORD}@HOST:3306 in "
                "conf/local/credentials.yml.",
            )
        scheme, _, rest = con.partition("://")
        if scheme.lower() not in _SCHEMES:
            shown = f" {scheme!r}" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme) else ""
            raise DoltError(
                f"Invalid credentials: con url scheme{shown} is not supported.",
                fix="use mysql://user:password@host:port (a dolt sql-server speaks MySQL).",
            )
        # The host follows the last `@`: everything before it is the user and password.
        userinfo, at, location = rest.rpartition("@")
        if not at:
            location = rest
        for end in "/?#":
            location = location.partition(end)[0]
        host, port = _host_and_port(location)
        user, _, password = userinfo.partition(":")
        return cls(host=host, port=port, user=unquote(user) or "root", password=unquote(password))

    def url(self, database: str = "") -> str:
        """The address without the password, e.g. ``mysql://kedro@dolt:3306/warehouse``."""
        return f"mysql://{self.user}@{self.host}:{self.port}/{database}"


def _host_and_port(location: str) -> tuple[str, int]:
    """``host[:port]`` or ``[v6 address][:port]`` of a con url (never shown in errors)."""
    fix = "use mysql://user:password@host:3306 (a host name or address, and a port number)."
    if location.startswith("["):
        host, bracket, tail = location[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise DoltError("Invalid credentials: the con url's host is malformed.", fix=fix)
        port_text = tail[1:]
    else:
        host, _, port_text = location.partition(":")
    if not host:
        raise DoltError("Invalid credentials: the con url names no host.", fix=fix)
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DoltError(
            "Invalid credentials: the con url's port is not a number from 1 to 65535.", fix=fix
        )
    return host, int(port_text)


def _pymysql() -> Any:
    try:
        import pymysql
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DoltError(
            "The server engine needs PyMySQL.",
            fix="pip install 'kedro-dolt' (it requires pymysql).",
        ) from exc
    return pymysql


def _connection_class() -> Any:
    """A PyMySQL connection that sends LOCAL INFILE data only for the file this process is
    loading right now: a server asking for any other client file gets an error instead."""
    pymysql = _pymysql()
    from pymysql.connections import MySQLResult
    from pymysql.protocol import LoadLocalPacketWrapper

    class GuardedResult(MySQLResult):  # type: ignore[misc]
        def _read_load_local_packet(self, first_packet: Any) -> Any:
            wanted = LoadLocalPacketWrapper(first_packet).filename
            name = wanted.decode("utf-8", "replace") if isinstance(wanted, bytes) else wanted
            if name not in self.connection.allowed_files:
                # The session is out of step now; the caller closes the connection.
                raise pymysql.err.OperationalError(
                    2000, f"the server asked for file {name!r}, which kedro-dolt is not loading"
                )
            return super()._read_load_local_packet(first_packet)

    class Connection(pymysql.connections.Connection):  # type: ignore[misc, name-defined]
        allowed_files: frozenset[str] = frozenset()

        def _read_query_result(self, unbuffered: bool = False) -> Any:
            # PyMySQL's own, with the guarded result (the LOAD LOCAL request is read there).
            self._result = None
            result = GuardedResult(self)
            if unbuffered:
                result.init_unbuffered_query()
            else:
                result.read()
            self._result = result
            if result.server_status is not None:
                self.server_status = result.server_status
            return result.affected_rows

    return Connection


_CONNECTION_CLASS: Any = None


class _Pool:
    """Idle connections of this process, each kept for the one database and branch (``""``
    for none) its scripts use: a session that checked a branch out keeps it, so a session
    is never handed to a script for another branch. Emptied after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[tuple[ServerAddress, bool, str], list[Any]] = {}
        self._pid = os.getpid()

    def take(self, address: ServerAddress, local_infile: bool, where: str = "") -> tuple[Any, bool]:
        """A live connection, and whether it was pooled (``False``: made now). Pooled ones
        the server has closed meanwhile (a restart) are dropped unused."""
        while True:
            with self._lock:
                if self._pid != os.getpid():  # a forked worker: the parent's sockets are not ours
                    self._idle, self._pid = {}, os.getpid()
                idle = self._idle.get((address, local_infile, where), [])
                connection = idle.pop() if idle else None
            if connection is None:
                return connect(address, local_infile=local_infile), False
            if not _closed_by_server(connection):
                return connection, True
            with contextlib.suppress(Exception):
                connection.close()

    def give(self, address: ServerAddress, local_infile: bool, where: str, connection: Any) -> None:
        closing = [connection]
        with self._lock:
            idle = self._idle.setdefault((address, local_infile, where), [])
            if self._pid == os.getpid() and len(idle) < 4:
                idle.append(connection)
                closing = []
                # Bound the sessions held open on the server (one key per branch used).
                while sum(map(len, self._idle.values())) > MAX_IDLE:
                    oldest = next(key for key, held in self._idle.items() if held)
                    closing.append(self._idle[oldest].pop(0))
                    if not self._idle[oldest]:
                        del self._idle[oldest]
        for stale in closing:
            with contextlib.suppress(Exception):
                stale.close()


_POOL = _Pool()


def _closed_by_server(connection: Any) -> bool:
    """Whether the server ended this idle connection (it restarted, or killed the session):
    an idle MySQL connection has nothing to read unless the server closed it or sent an
    error. Checked without sending anything."""
    sock = getattr(connection, "_sock", None)
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _lost(exc: BaseException, connection: Any) -> bool:
    """Whether ``exc`` means the connection is gone (rather than a refused statement)."""
    pymysql = _pymysql()
    if isinstance(exc, pymysql.err.MySQLError):
        return _error_parts(exc)[0] in _LOST or (
            isinstance(exc, pymysql.err.InterfaceError) and not getattr(connection, "open", True)
        )
    # PyMySQL fails with OSError, or AttributeError on a socket it has dropped already.
    return isinstance(exc, (OSError, AttributeError)) and not getattr(connection, "open", True)


def connect(address: ServerAddress, *, local_infile: bool = False, database: str = "") -> Any:
    """A new autocommit connection, or ``DoltError`` saying why none could be made."""
    global _CONNECTION_CLASS
    pymysql = _pymysql()
    if _CONNECTION_CLASS is None:
        _CONNECTION_CLASS = _connection_class()
    try:
        return _CONNECTION_CLASS(
            host=address.host,
            port=address.port,
            user=address.user,
            # As bytes: PyMySQL would encode a str as Latin-1; Dolt checks the UTF-8 bytes.
            password=address.password.encode("utf-8"),
            database=database or None,
            autocommit=True,
            local_infile=local_infile,
            charset="utf8mb4",
            connect_timeout=10,
            cursorclass=pymysql.cursors.Cursor,
        )
    except pymysql.err.MySQLError as exc:
        code, message = _error_parts(exc)
        raise DoltError(
            f"Cannot connect to the Dolt server at {address.url(database)}.",
            fix=_CONNECT_FIXES.get(code, "check the credentials' con url and the server."),
            dolt_message=message.replace(address.password or "\0", "***"),
        ) from exc
    except Exception as exc:  # anything else may quote what it was given: no chain
        raise DoltError(
            f"Cannot connect to the Dolt server at {address.url(database)} ({type(exc).__name__}).",
            fix="check the credentials' con url and the server.",
        ) from None


def _refused(code: int, message: str, results: list[Rows] | None = None) -> DoltCommandError:
    """A statement the server refused, as the engine's error (1213: try again)."""
    return DoltCommandError(
        ["sql"],
        code,
        message,
        results=results,
        transient=code in _TRANSIENT_ERRNOS,
        what=f"The Dolt server refused a statement (MySQL error {code}).",
    )


def _denied(code: int, message: str) -> bool:
    lowered = message.lower()
    return code in _PRIVILEGE_ERRORS or any(m in lowered for m in _PRIVILEGE_MESSAGES)


def _error_parts(exc: BaseException) -> tuple[int, str]:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return int(args[0]), str(args[1])
    return 0, str(exc)


def _value(value: Any) -> Any:
    """A result value as the CLI's JSON would give it (strings for times and decimals)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta, decimal.Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _sql_values(frame: pd.DataFrame, schema: TableSchema) -> list[list[Any]]:
    """Each column as Python values PyMySQL escapes exactly (None for missing)."""
    columns = []
    for column in schema.columns:
        series = frame[column.name]
        missing = series.isna().to_numpy()
        if column.sql_type == "datetime(6)":
            stamps = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz else series
            values = list(stamps.dt.to_pydatetime())
        elif column.sql_type in ("double", "float"):
            values = series.to_numpy(dtype="float64", na_value=np.nan).tolist()
        elif column.sql_type == "tinyint(1)":
            values = [int(bool(v)) if not m else None for v, m in zip(series, missing, strict=True)]
        else:
            values = series.astype(object).tolist()
        if missing.any():
            values = [None if m else v for v, m in zip(values, missing, strict=True)]
        columns.append(values)
    return columns


class ServerConnection:
    """Runs scripts over pooled connections to one database on a ``dolt sql-server``."""

    def __init__(self, address: ServerAddress, database: str, author: str | None = None) -> None:
        self.address = address
        self.database = database
        self._author = author
        self._local_infile: bool | None = None
        self._exists = False

    @property
    def location(self) -> str:
        return self.address.url(self.database)

    #: Small loads go by ``INSERT``, which stores ``-0.0`` as ``0.0``: so do all of them.
    keeps_negative_zero = False

    @property
    def cache_dir(self) -> Path:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        where = f"{self.address.host}-{self.address.port}"
        name = hashlib.sha1(self.database.encode()).hexdigest()[:8]
        return root / "kedro-dolt" / "servers" / re.sub(r"[^\w.-]", "_", where) / name

    # -- the transport ------------------------------------------------------------------

    def exists(self) -> bool:
        if self._exists:
            return True  # databases are not dropped under a pipeline; a miss is asked again
        rows = self._run_plain(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "
            f"{quote_string(self.database)}"
        )
        self._exists = bool(rows)
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
        name = quote_identifier(self.database)
        try:
            self._run_plain(f"CREATE DATABASE IF NOT EXISTS {name}")
        except DoltCommandError as exc:
            raise self._error(exc, f"Cannot create database {self.database!r}") from exc
        if initial_branch:
            branch = quote_string(validate_branch(initial_branch))
            with contextlib.suppress(DoltCommandError):  # exists already (a race, or main)
                self.run([f"CALL dolt_branch({branch});"])

    def author(self) -> str | None:
        return self._author

    def lock(self, *, exclusive: bool) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # the server orders writers itself

    def run(
        self,
        statements: Sequence[Statement],
        *,
        branch: str | None = None,
        retry: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        def attempt() -> list[Rows]:
            return self._script(statements, branch, arrow=False)

        return with_retries(attempt) if retry else attempt()

    def run_arrow(self, statements: Sequence[str], *, branch: str | None = None) -> list[pa.Table]:
        return with_retries(lambda: self._script(statements, branch, arrow=True))

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
        use = f"USE {quote_identifier(f'{database}/{revision}')};"
        tables = self._script([use, statement], None, arrow=True, use=False)
        return tables[0] if tables else None

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
        login = f"'--user', {quote_string(user)}, " if user is not None else ""
        try:
            self._run_plain(
                f"CALL dolt_clone({login}'--remote', {quote_string(validate_branch(remote))}, "
                f"{quote_string(url)}, {quote_string(self.database)})"
            )
        except DoltCommandError as exc:
            raise DoltError(
                f"Cannot clone {url} as database {self.database!r} on {self.address.url()}.",
                fix="check the remote url, that it holds a Dolt database, and that the "
                "server can reach it with its own credentials.",
                dolt_message=exc.dolt_message,
            ) from exc

    # -- running statements -------------------------------------------------------------

    def _uses_local_infile(self) -> bool:
        if self._local_infile is None:
            rows = self._run_plain("SELECT @@local_infile")
            self._local_infile = bool(int(rows[0][0] or 0)) if rows else False
        return self._local_infile

    def _run_plain(self, statement: str) -> list[tuple[Any, ...]]:
        """One statement outside any database, on a connection from the pool."""
        connection, _ = _POOL.take(self.address, False)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                rows = list(cursor.fetchall()) if cursor.description else []
        except Exception as exc:
            failure = self._failure(exc, connection, [])
            if failure is exc:
                raise
            raise failure from exc
        _POOL.give(self.address, False, "", connection)
        return rows

    def _script(
        self, statements: Sequence[Statement], branch: str | None, *, arrow: bool, use: bool = True
    ) -> list[Rows] | list[pa.Table]:
        local = any(isinstance(s, Load) for s in statements) and self._uses_local_infile()
        db = f"{self.database}/{validate_branch(branch)}" if branch else self.database
        where = db if use else ""
        script: list[Statement] = [f"USE {quote_identifier(db)}"] if use else []
        script += statements
        while True:
            connection, pooled = _POOL.take(self.address, local, where)
            results: list[Any] = []
            sent = 0
            try:
                with connection.cursor() as cursor, scratch.temp_dir() as tmp:
                    for i, statement in enumerate(script):
                        if isinstance(statement, Load):
                            self._load(connection, cursor, statement, local, Path(tmp) / f"{i}.tsv")
                        elif text := statement.strip().rstrip(";"):
                            cursor.execute(text)
                            if cursor.description:
                                results.append(_arrow(cursor) if arrow else _rows(cursor))
                        sent += 1
            except Exception as exc:
                first_use = sent == 0 and str(script[0]).startswith("USE ")
                if pooled and first_use and _lost(exc, connection):
                    # A pooled session the server dropped while it was idle: only a USE was
                    # sent, so try once more on a new connection.
                    with contextlib.suppress(Exception):
                        connection.close()
                    continue
                failure = self._failure(exc, connection, [] if arrow else results)
                if failure is exc:
                    raise
                raise failure from exc
            _POOL.give(self.address, local, where, connection)
            return results

    def _failure(self, exc: BaseException, connection: Any, results: list[Rows]) -> BaseException:
        """What to raise for ``exc`` from ``connection`` (closed here: its session's state
        is unknown now): a lost connection or a refusal the user can act on as a
        ``DoltError`` with the fix, another refused statement as ``DoltCommandError``
        (``results``: those of the statements before it), anything else as it is."""
        lost = _lost(exc, connection)
        with contextlib.suppress(Exception):
            connection.close()
        what = "The Dolt server refused or lost the session"
        if lost:
            code, message = _error_parts(exc)
            message = message if code in _LOST else f"{type(exc).__name__}: the connection closed"
            return self._error(_refused(2013, message, results), what)
        if isinstance(exc, _pymysql().err.MySQLError):
            code, message = _error_parts(exc)
            error = _refused(code, message, results)
            if code in _CONNECT_FIXES or _denied(code, message):
                return self._error(error, what)
            return error
        return exc

    def _load(self, connection: Any, cursor: Any, load: Load, local: bool, path: Path) -> None:
        """Send ``load``'s rows: LOAD DATA LOCAL streamed through a named pipe for big loads
        when the server allows it, else multi-row INSERTs (faster for a few thousand rows)."""
        if local and len(load.frame) >= LOCAL_INFILE_ROWS:
            self._load_local(connection, cursor, load, path)
            return
        names = ", ".join(quote_identifier(c).replace("%", "%%") for c in load.schema.names)
        verb = "REPLACE" if load.replace else "INSERT"
        template = (
            f"{verb} INTO {quote_identifier(load.table).replace('%', '%%')} ({names}) "
            f"VALUES ({', '.join(['%s'] * len(load.schema.names))})"
        )
        columns = _sql_values(load.frame, load.schema)
        step = 50_000  # bounds the Python objects alive at once; PyMySQL batches each slice
        for start in range(0, len(load.frame), step):
            rows = list(zip(*(c[start : start + step] for c in columns), strict=True))
            cursor.executemany(template, rows)

    def _load_local(self, connection: Any, cursor: Any, load: Load, path: Path) -> None:
        """LOAD DATA LOCAL INFILE of a named pipe a thread fills while PyMySQL sends it: the
        encoding overlaps the load, and no file of rows is written whole."""
        prefixed = null_text_columns(load.frame, load.schema)
        statement = load_data_statement(
            load.table, load.schema, str(path), prefixed, replace=load.replace
        ).replace("LOAD DATA INFILE", "LOAD DATA LOCAL INFILE", 1)
        writer = PipeWriter(path, encode_rows(load.frame, load.schema, prefixed))
        connection.allowed_files = frozenset({str(path)})
        try:
            cursor.execute(statement)
        finally:
            connection.allowed_files = frozenset()
            writer.finish()
        if writer.error is not None:
            # The pipe ended early, so the load may hold part of the rows: the script stops
            # here, before anything is committed, and its scratch branch is discarded.
            error = writer.error
            if isinstance(error, DoltError):
                raise _refused(0, error.what if not error.fix else f"{error.what} {error.fix}")
            raise _refused(0, f"kedro-dolt stopped the load, so nothing was kept: {error}")
        # With LOCAL, a row Dolt cannot store (duplicate key, NULL key, bad value) is skipped
        # or zeroed with only a note, as in MySQL: any note fails the save.
        cursor.execute("SHOW WARNINGS LIMIT 5")
        notes = cursor.fetchall()
        if notes:
            messages = "; ".join(str(n[2]) for n in notes)
            raise _pymysql().err.OperationalError(int(notes[0][1]), messages)

    def _error(self, exc: DoltCommandError, what: str) -> DoltError:
        code = exc.returncode
        if _denied(code, exc.dolt_message):
            fix = (
                f"grant the user {self.address.user!r} the privileges kedro-dolt needs on "
                f"{self.database!r} (e.g. GRANT ALL ON `{self.database}`.* TO "
                f"'{self.address.user}'@'%'), or use another user."
            )
        elif code in _LOST:
            fix = "check that the server still runs and is reachable, then run again."
        else:
            fix = _CONNECT_FIXES.get(code) or explain(exc.dolt_message)
        return DoltError(f"{what} ({self.location}).", fix=fix, dolt_message=exc.dolt_message)


def _rows(cursor: Any) -> Rows:
    names = [d[0] for d in cursor.description]
    return [
        {n: _value(v) for n, v in zip(names, row, strict=True) if v is not None}
        for row in cursor.fetchall()
    ]


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


class DoltServerEngine(SQLEngine):
    """A database on a ``dolt sql-server`` (or Hosted Dolt), reached over MySQL.

    Built from Kedro credentials ``{con: mysql://user:password@host:port}`` (optional
    ``author: "Name <email>"`` for commits; default: the server's SQL user). Picklable: it
    holds the address, not connections.
    """

    def __init__(self, database: str, *, credentials: Mapping[str, Any]) -> None:
        if not isinstance(credentials, Mapping) or "con" not in credentials:
            raise DoltError(
                "Invalid credentials for the Dolt server: a mapping with `con` is expected.",
                fix="in conf/local/credentials.yml: dolt_server: {con: "
                "mysql://USER:PASSWORD@HOST:3306}; in the catalog: credentials: dolt_server.",
            )
        if not isinstance(database, str) or not re.fullmatch(r"[A-Za-z0-9_][\w-]*", database):
            raise DoltError(
                f"Invalid database name {database!r} for a Dolt server.",
                fix="with credentials, `database` names a database on the server (letters, "
                "digits, _ and -), e.g. database: warehouse.",
            )
        author = credentials.get("author")
        self.address = ServerAddress.from_con(credentials["con"])
        self.database_name = database
        super().__init__(ServerConnection(self.address, database, author))

    def __repr__(self) -> str:
        return f"DoltServerEngine({self.location!r})"
