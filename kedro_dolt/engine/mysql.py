"""PyMySQL for the server transport: the address in ``con``, connections (with the LOCAL
INFILE guard), the pool of idle sessions, and what a MySQL error means.

The password lives only in :class:`ServerAddress`; its ``repr`` and :meth:`~ServerAddress.url`
leave it out, and no error built here shows it.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ..errors import DoltCommandError, DoltError
from .transport import Rows

DEFAULT_PORT = 3306
_SCHEMES = ("mysql", "mysql+pymysql", "mysql+mysqldb", "mysql+mysqlconnector")
#: MySQL error numbers the user can act on, with the fix.
CONNECT_FIXES = {
    1045: "check the user and password in the credentials' con url.",
    2003: "check the host and port in the credentials' con url, and that `dolt sql-server` "
    "runs there (e.g. `dolt sql-server --host 0.0.0.0 --port 3306`).",
    2005: "check the host name in the credentials' con url.",
}
_PRIVILEGE_ERRORS = (1044, 1142, 1143, 1227, 1370)
#: Dolt reports missing privileges as error 1105 with these messages.
_PRIVILEGE_MESSAGES = ("access denied for user", "command denied to user")
_TRANSIENT_ERRNOS = (1213,)
LOST = (2006, 2013)
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
    #: A unix socket to connect through instead of host and port (a run's own server).
    unix_socket: str | None = None

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


def pymysql_module() -> Any:
    try:
        import pymysql
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DoltError(
            "The server engine needs PyMySQL.",
            fix="pip install 'kedro-dolt' (it requires pymysql).",
        ) from exc
    return pymysql


#: Seconds to connect, and again to complete the MySQL handshake.
CONNECT_TIMEOUT = 10.0


def _connection_class() -> Any:
    """A PyMySQL connection that sends LOCAL INFILE data only for the file this process is
    loading right now (a server asking for any other client file gets an error instead), and
    that reads BIT values as the bytes they are."""
    pymysql = pymysql_module()
    from pymysql.connections import MySQLResult
    from pymysql.constants import FIELD_TYPE
    from pymysql.protocol import LoadLocalPacketWrapper

    class GuardedResult(MySQLResult):  # type: ignore[misc]
        converters: list[tuple[str | None, Any]]

        def _get_descriptions(self) -> None:
            super()._get_descriptions()
            # Dolt marks BIT columns with the connection's character set, not `binary`, so
            # PyMySQL would decode their bytes as text (and fail on 0xff): keep the bytes.
            self.converters = [
                (None, convert) if field.type_code == FIELD_TYPE.BIT else (encoding, convert)
                for field, (encoding, convert) in zip(self.fields, self.converters, strict=True)
            ]

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

        def connect(self, sock: Any = None) -> None:
            # PyMySQL reads the server's greeting with the read timeout (none: forever);
            # the handshake gets the connect timeout, statements no limit (a save may be long).
            saved = getattr(self, "_read_timeout", None)
            self._read_timeout = self.connect_timeout
            try:
                super().connect(sock)
            finally:
                self._read_timeout = saved

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


class Pool:
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
            if not closed_by_server(connection):
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


POOL = Pool()


def closed_by_server(connection: Any) -> bool:
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


def is_lost(exc: BaseException, connection: Any) -> bool:
    """Whether ``exc`` means the connection is gone (rather than a refused statement)."""
    pymysql = pymysql_module()
    if isinstance(exc, pymysql.err.MySQLError):
        return error_parts(exc)[0] in LOST or (
            isinstance(exc, pymysql.err.InterfaceError) and not getattr(connection, "open", True)
        )
    # PyMySQL fails with OSError, or AttributeError on a socket it has dropped already.
    return isinstance(exc, (OSError, AttributeError)) and not getattr(connection, "open", True)


class ServerUnreachable(DoltError):
    """No session could be opened: the server is not there (any more), refuses connections
    while it stops, or does not answer in time. Nothing was sent."""


_UNREACHABLE = (2002, 2003, 2006, 2013)


def connect(
    address: ServerAddress,
    *,
    local_infile: bool = False,
    database: str = "",
    timeout: float = CONNECT_TIMEOUT,
) -> Any:
    """A new autocommit connection, or ``DoltError`` saying why none could be made: within
    ``timeout`` seconds for the connection and again for the handshake (a listener that
    accepts but never speaks is not waited for forever)."""
    global _CONNECTION_CLASS
    pymysql = pymysql_module()
    if _CONNECTION_CLASS is None:
        _CONNECTION_CLASS = _connection_class()
    try:
        return _CONNECTION_CLASS(
            host=address.host,
            port=address.port,
            unix_socket=address.unix_socket,
            user=address.user,
            # As bytes: PyMySQL would encode a str as Latin-1; Dolt checks the UTF-8 bytes.
            password=address.password.encode("utf-8"),
            database=database or None,
            autocommit=True,
            local_infile=local_infile,
            charset="utf8mb4",
            connect_timeout=timeout,
            cursorclass=pymysql.cursors.Cursor,
        )
    except pymysql.err.MySQLError as exc:
        code, message = error_parts(exc)
        kind = ServerUnreachable if code in _UNREACHABLE else DoltError
        raise kind(
            f"Cannot connect to the Dolt server at {address.url(database)}.",
            fix=CONNECT_FIXES.get(code, "check the credentials' con url and the server."),
            dolt_message=message.replace(address.password or "\0", "***"),
        ) from exc
    except Exception as exc:  # anything else may quote what it was given: no chain
        raise ServerUnreachable(
            f"Cannot connect to the Dolt server at {address.url(database)} ({type(exc).__name__}).",
            fix="check the credentials' con url and the server.",
        ) from None


def refused(code: int, message: str, results: list[Rows] | None = None) -> DoltCommandError:
    """A statement the server refused, as the engine's error (1213: try again)."""
    return DoltCommandError(
        ["sql"],
        code,
        message,
        results=results,
        transient=code in _TRANSIENT_ERRNOS,
        what=f"The Dolt server refused a statement (MySQL error {code}).",
    )


def denied(code: int, message: str) -> bool:
    lowered = message.lower()
    return code in _PRIVILEGE_ERRORS or any(m in lowered for m in _PRIVILEGE_MESSAGES)


def error_parts(exc: BaseException) -> tuple[int, str]:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return int(args[0]), str(args[1])
    return 0, str(exc)
