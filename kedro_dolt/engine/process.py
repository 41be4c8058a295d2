"""The local transport: the ``dolt`` command line on a repository directory.

Each script runs as one ``dolt --branch B sql`` process reading the statements on stdin;
rows to load are streamed through a named pipe that ``LOAD DATA INFILE`` reads while a
thread encodes them (:class:`~.pipes.PipeFeed`). Every process holds the
repository lock (:mod:`.locking`): Dolt opens a repository read-only when another
process holds it.

doltcli 0.2.2 runs commands without stdin, decodes stdout as text (no Parquet), swallows
``init`` failures and misparses ``dolt log``/branch listings, so the binary is run directly.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from io import BytesIO
from pathlib import Path
from typing import IO, ClassVar, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import DoltCommandError, DoltError
from ..naming import quote_string, validate_branch
from . import scratch
from .codec import encode_tsv, null_text_columns
from .locking import repository_lock
from .messages import dolt_summary, explain, translated
from .output import READ_SIZE, RESULT_MARK, json_results, parquet_results, stream_csv_results
from .pipes import F_SETPIPE_SZ, PIPE_SIZE, PipeFeed
from .sql.common import use
from .sql.saves import load_data
from .transport import Load, Rows, Statement

T = TypeVar("T")

BINARY_ENV = "KEDRO_DOLT_BINARY"
INSTALL_HINT = (
    "install Dolt 1.86 or newer (https://docs.dolthub.com/introduction/installation; on "
    "Linux: sudo bash -c 'curl -L https://github.com/dolthub/dolt/releases/latest/download/"
    "install.sh | bash', on macOS: brew install dolt) so that `dolt` is on PATH, or set "
    f"{BINARY_ENV} to the dolt executable; `dolt version` checks it"
)

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Runs in each ``dolt`` child before exec: the kernel kills it when its parent dies, so
    a killed Python process never leaves a `dolt` writing without kedro-dolt's lock."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@functools.cache
def pdeathsig_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL --``, when util-linux's setpriv can set the parent-death
    signal: the child then starts without a ``preexec_fn``, which forces Python to ``fork``
    (copying the page tables of a large pipeline process: ~25 ms at 400 MB) instead of
    ``vfork`` (~2 ms)."""
    found = shutil.which("setpriv") if _LIBC is not None else None
    if found is None:
        return ()
    prefix = (found, "--pdeathsig", "KILL", "--")
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode == 0
    except OSError:
        ok = False
    return prefix if ok else ()


def _killer(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    def kill() -> None:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()

    return kill


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
    def cache_dir(self) -> Path:
        return self.database / ".kedro-dolt"

    #: Rows go by ``LOAD DATA``, which keeps the sign of zero.
    keeps_negative_zero = True
    #: Each script is a new ``dolt`` process.
    cheap_round_trips = False

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_dolt_binary()
        return self._binary

    def _where(self) -> list[str]:
        """The repository, and where Dolt keeps its config: a ``dolt_branch`` makes a
        ``.doltcfg/`` in the data directory, after which ``dolt`` refuses to start in a nested
        repository (two ``.doltcfg``); without one of its own: ``.kedro-dolt/doltcfg``."""
        where = ["--data-dir", str(self.database)]
        if not (self.database / ".doltcfg").exists():
            where += ["--doltcfg-dir", str(self.cache_dir / "doltcfg")]
        return where

    def _spawn(
        self,
        args: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        data_dir: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``dolt ARGS`` with pipes for stdin, stdout and stderr; it dies with this
        process (``PR_SET_PDEATHSIG``)."""
        cmd = [self.binary, *(self._where() if data_dir else []), *args]
        prefix = pdeathsig_prefix()
        try:
            if prefix and shutil.which(cmd[0]) is None:  # setpriv would only exit 127
                raise FileNotFoundError(errno.ENOENT, "No such executable file", cmd[0])
            return subprocess.Popen(
                [*prefix, *cmd],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd or self.database,
                env=child_env(env),
                preexec_fn=None if prefix else die_with_parent,
            )
        except FileNotFoundError as exc:
            raise DoltError(f"Cannot run {cmd[0]!r}: {exc}.", fix=INSTALL_HINT) from exc

    def command(
        self,
        args: Sequence[str],
        *,
        stdin: bytes | None = None,
        cwd: str | os.PathLike[str] | None = None,
        data_dir: bool = True,
        env: Mapping[str, str] | None = None,
        feed: PipeFeed | None = None,
    ) -> bytes:
        """Run ``dolt ARGS``; its stdout, or ``DoltCommandError`` with its message.
        ``feed`` writes rows into the script's named pipes while it runs."""
        proc = self._spawn(args, cwd=cwd, data_dir=data_dir, env=env)
        try:
            if feed:
                feed.start(reader_gone=lambda: proc.poll() is not None, abort=_killer(proc))
            out, err = proc.communicate(stdin)
        finally:
            if proc.poll() is None:  # interrupted: the child must not outlive the call
                proc.kill()
                proc.wait()
            if feed:
                feed.finish()
        if feed and feed.error is not None:
            raise DoltCommandError(
                list(args),
                proc.returncode,
                f"kedro-dolt stopped the load, so nothing it wrote was kept: {feed.error}",
                stdout=out,
            ) from feed.error
        if proc.returncode != 0:
            message = (err or out).decode("utf-8", "replace")
            raise DoltCommandError(list(args), proc.returncode, dolt_summary(message), stdout=out)
        return out

    def _sql(
        self,
        script: str,
        *,
        branch: str | None,
        fmt: str,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        feed: PipeFeed | None = None,
    ) -> bytes:
        args = (["--branch", branch] if branch else []) + ["sql", "-r", fmt]
        # Scripts go on stdin: a -q argument is capped at 128 KiB by Linux.
        return self.command(args, stdin=script.encode("utf-8"), cwd=cwd, env=env, feed=feed)

    # -- the transport ------------------------------------------------------------------

    def run(
        self,
        statements: Sequence[Statement],
        *,
        branch: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        """Run the statements in one ``dolt sql``; a failure's ``DoltCommandError`` carries
        the result sets of the statements before it."""
        with self._rendered(statements) as (script, cwd, feed):
            try:
                out = self._sql(script, branch=branch, fmt="json", cwd=cwd, env=env, feed=feed)
            except DoltCommandError as exc:
                exc.results = json_results(exc.stdout)
                raise
        return json_results(out)

    def run_arrow(self, statements: Sequence[str], *, branch: str | None = None) -> list[pa.Table]:
        return parquet_results(self._sql("\n".join(statements), branch=branch, fmt="parquet"))

    def run_read(
        self, statements: Sequence[str], rows_at: Callable[[str | None], str], *, branch: str | None
    ) -> list[pa.Table]:
        # One dolt start; under the shared lock nothing moves between the statements, so
        # the rows may be read at the ref as given. CSV: Dolt writes it about twice as fast
        # as Parquet, and its text is exact (see csv_results).
        token = uuid.uuid4().hex
        mark = f"SELECT {quote_string(token)} AS {RESULT_MARK};"
        script = "\n".join(f"{s}\n{mark}" for s in statements) + "\n" + rows_at(None)
        args = (["--branch", branch] if branch else []) + ["sql", "-r", "csv"]
        return self._streamed(
            args,
            script.encode("utf-8"),
            lambda out: stream_csv_results(out, token, len(statements)),
        )

    def _streamed(self, args: Sequence[str], stdin: bytes, consume: Callable[[IO[bytes]], T]) -> T:
        """Run ``dolt ARGS`` and hand its stdout, as it is written, to ``consume`` (which
        parses while Dolt still writes); Dolt's error wins over a parse error."""
        proc = self._spawn(args)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        with contextlib.suppress(OSError):  # fewer stalls of Dolt on a full pipe
            fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        errors: list[bytes] = []

        def feed_and_drain() -> None:
            with contextlib.suppress(OSError):
                proc.stdin.write(stdin)  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            errors.append(proc.stderr.read())  # type: ignore[union-attr]

        side = threading.Thread(target=feed_and_drain, name="kedro-dolt-stderr", daemon=True)
        side.start()
        failure: BaseException | None = None
        result: T | None = None
        try:
            result = consume(proc.stdout)
        except Exception as exc:  # Dolt's exit status decides which error is the cause
            failure = exc
        except BaseException:  # interrupted: the child must not outlive the call
            proc.kill()
            raise
        finally:
            with contextlib.suppress(OSError, ValueError):  # let Dolt finish writing
                while proc.stdout.read1(READ_SIZE):  # type: ignore[attr-defined]
                    pass
            side.join()
            returncode = proc.wait()
        if returncode != 0:
            message = b"".join(errors).decode("utf-8", "replace")
            raise DoltCommandError(list(args), returncode, dolt_summary(message)) from failure
        if failure is not None:
            raise failure
        return result  # type: ignore[return-value]

    def run_query(self, database: str, revision: str, statement: str) -> pa.Table | None:
        """One read-only statement in the revision database ``database/revision``, while
        Dolt can open the repository only read-only, from an empty scratch directory (the
        CLI's ``secure_file_priv``): if the statement policy were ever fooled, the statement
        would still find nothing it can write."""
        from .sql_policy import storage_read_only  # sqlglot: only with a query dataset

        with (
            storage_read_only(self.database),
            tempfile.TemporaryDirectory(prefix="kedro-dolt-query-") as empty,
        ):
            script = f"{use(database, revision)}\n{statement};"
            data = self._sql(script, branch=None, fmt="parquet", cwd=empty)
        return pq.read_table(BytesIO(data)) if data else None

    @contextlib.contextmanager
    def _rendered(
        self, statements: Sequence[Statement]
    ) -> Iterator[tuple[str, str | None, PipeFeed | None]]:
        """The script's text; each :class:`Load` becomes a named pipe in a temp dir (removed
        afterwards, whatever happens), a LOAD DATA reading it, and the rows the feed writes."""
        if not any(isinstance(s, Load) for s in statements):
            yield "\n".join(s for s in statements if isinstance(s, str) and s), None, None
            return
        with scratch.temp_dir() as tmp:
            lines, feed = [], PipeFeed()
            for i, statement in enumerate(statements):
                if isinstance(statement, Load):
                    path = Path(tmp) / f"rows-{i}.tsv"
                    prefixed = null_text_columns(statement.frame, statement.schema)
                    feed.add(path, encode_tsv(statement.frame, statement.schema, prefixed))
                    statement = load_data(
                        statement.table,
                        statement.schema,
                        str(path),
                        prefixed,
                        replace=statement.replace,
                    )
                    statement += ";"
                if statement:
                    lines.append(statement)
            yield "\n".join(lines), tmp, feed

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
        args = ["init"] + (["-b", validate_branch(initial_branch)] if initial_branch else [])
        self.binary  # noqa: B018 - no dolt, no directory or lock file made for nothing
        created = not self.database.exists()
        with repository_lock(self.database, exclusive=True):
            if self.exists():  # another process won the race
                return
            try:
                with translated(
                    f"Cannot create a Dolt repository at {self.database}.",
                    "check the directory is writable.",
                ):
                    self.command(args, data_dir=False)
            except DoltError:
                if created:  # leave no half-made repository (or lock file) behind
                    shutil.rmtree(self.database, ignore_errors=True)
                raise

    def author(self) -> str:
        """``Name <email>`` from Dolt's config (local over global) for commits made in SQL.

        ``CALL dolt_commit`` in ``dolt sql`` otherwise records the SQL user, root@localhost.
        """
        key = (str(self.database), os.environ.get("DOLT_ROOT_PATH", ""), os.environ.get("HOME", ""))
        if key not in self._authors:
            config = self._config_files()
            if not config.get("user.name") or not config.get("user.email"):
                config = self._config_listed()  # Dolt's own answer, or its own error
            if not config.get("user.name") or not config.get("user.email"):
                raise DoltError(
                    "Dolt has no commit identity (user.name / user.email).",
                    fix=explain("author identity"),
                )
            self._authors[key] = f"{config['user.name']} <{config['user.email']}>"
        return self._authors[key]

    def _config_listed(self) -> dict[str, str]:
        listed = self.command(["config", "--list"], data_dir=False).decode("utf-8")
        config: dict[str, str] = {}
        for line in listed.splitlines():  # local entries come first and win
            name, sep, value = line.partition(" = ")
            if sep:
                config.setdefault(name.strip(), value.strip())
        return config

    def _config_files(self) -> dict[str, str]:
        """What ``dolt config --list`` prints, read from Dolt's JSON files without starting
        it: the repository's ``.dolt/config.json`` over ``config_global.json`` in
        ``$DOLT_ROOT_PATH/.dolt`` (else ``$HOME/.dolt``). Empty when a file is not the flat
        JSON object of strings Dolt writes (the caller then asks ``dolt``)."""
        root = os.environ.get("DOLT_ROOT_PATH") or os.environ.get("HOME") or ""
        files = [self.database / ".dolt" / "config.json"]
        files += [Path(root) / ".dolt" / "config_global.json"] if root else []
        config: dict[str, str] = {}
        for path in files:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                return {}
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()
            ):
                return {}
            for name, value in data.items():
                config.setdefault(name.strip(), value.strip())
        return config

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


__all__ = ["BINARY_ENV", "DoltProcess", "find_dolt_binary"]
