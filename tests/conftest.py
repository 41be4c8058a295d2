"""Shared fixtures: a private Dolt identity for the session, real repositories in tmp dirs."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kedro_dolt.engine import DoltCLIEngine, DoltEngine, DoltServerEngine, RepositoryState
from kedro_dolt.engine.foreign_server import foreign_server
from kedro_dolt.engine.mysql import connect
from kedro_dolt.engine.run_server import RunServers
from tests.support.dolt_server import DoltServer, dolt_server_factory  # noqa: F401

#: Test modules that set ``BOTH_ENGINES = True`` run each test taking ``repo`` twice: on the
#: CLI engine (a local repository) and on the server engine (a database on a real
#: ``dolt sql-server``). Tests marked ``cli_only`` are about the local repository itself.
ENGINES = ("cli", "server")
#: ... and modules that also set ``SERVED_TOO = True`` a third time: a local repository
#: served by a Kedro run's own ``dolt sql-server`` (:mod:`kedro_dolt.engine.run_server`).
SERVED = "served"

#: Dolt's errors when another process held the store for a moment (the machine is busy).
TRANSIENT = ("database is read only", "cannot update manifest")


def dolt(repo: Path, *args: str) -> str:
    """Run the real dolt binary in ``repo``; fail the test on a non-zero exit. A test's own
    setup retries Dolt's transient lock errors a few times (kedro-dolt's calls never)."""
    for attempt in range(3):
        proc = subprocess.run(
            ["dolt", *args], cwd=repo, capture_output=True, text=True, check=False, timeout=120
        )
        if proc.returncode == 0 or not any(t in proc.stderr for t in TRANSIENT):
            break
        time.sleep(0.2 * 2**attempt)
    assert proc.returncode == 0, f"dolt {' '.join(args)} failed: {proc.stderr or proc.stdout}"
    return proc.stdout


def dolt_rows(repo: Path, query: str) -> list[dict]:
    """Rows of a query, read directly (not through the engine): with the dolt binary, or
    over a plain MySQL connection for a database on a server."""
    if isinstance(repo, ServerRepo):
        with repo.server.connect(database=repo.db) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            names = [d[0] for d in cursor.description or ()]
            # Like the CLI's JSON: NULL values are left out.
            return [
                {n: v for n, v in zip(names, row, strict=True) if v is not None}
                for row in cursor.fetchall()
            ]
    if isinstance(repo, ServedRepo):
        served = foreign_server(Path(repo))
        if served is not None:
            # The dolt binary would route through the run server and print every value as a
            # string: read typed values over MySQL instead, as the CLI's JSON gives them.
            with contextlib.closing(connect(served.address())) as conn, conn.cursor() as cursor:
                cursor.execute(f"USE `{served.database}`")
                cursor.execute(query)
                names = [d[0] for d in cursor.description or ()]
                return [
                    {n: _as_json(v) for n, v in zip(names, row, strict=True) if v is not None}
                    for row in cursor.fetchall()
                ]
    out = dolt(repo, "sql", "-r", "json", "-q", query)
    return json.loads(out.splitlines()[-1])["rows"] if out.strip() else []


def _as_json(value: Any) -> Any:
    """A MySQL value as the dolt CLI's JSON output shows it."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return str(value)
    if isinstance(value, bytes):
        return value.decode()
    return value


def foreign(repo: Path, *statements: str) -> None:
    """Statements run by someone else, outside kedro-dolt: a plain ``dolt sql`` on the
    repository, or a plain MySQL connection to its database on the server."""
    if isinstance(repo, ServerRepo):
        with repo.server.connect(database=repo.db) as conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    else:
        dolt(repo, "sql", "-q", ";\n".join(statements) + ";")


def engine_of(repo: Path) -> DoltEngine:
    """The engine of ``repo`` on its own transport."""
    if isinstance(repo, ServerRepo):
        return DoltServerEngine(repo.db, credentials=repo.credentials)
    return DoltCLIEngine(repo)


def state(repo: Path) -> RepositoryState:
    return engine_of(repo).state()


class Repo(type(Path())):  # type: ignore[misc]
    """A local repository's path; ``args`` are the dataset arguments that reach it."""

    kind = "cli"

    @property
    def args(self) -> dict[str, Any]:
        return {"database": str(self)}

    @property
    def location(self) -> str:
        """How the dataset names the database (describe, records, kedro-viz)."""
        return str(self)


class ServedRepo(Repo):
    """A local repository, served (from its first use) by a run server the test opened."""

    kind = SERVED


class ServerRepo(Repo):
    """A database on the session's ``dolt sql-server``; the path is its directory in the
    server's data dir (where the dolt binary, routed through the server, can inspect it)."""

    kind = "server"
    server: DoltServer
    db: str

    @classmethod
    def on(cls, server: DoltServer, db: str) -> ServerRepo:
        repo = cls(server.data_dir / db)
        repo.server, repo.db = server, db
        return repo

    @property
    def credentials(self) -> dict[str, Any]:
        return {"con": self.server.url()}

    @property
    def args(self) -> dict[str, Any]:
        return {"database": self.db, "credentials": self.credentials}

    @property
    def location(self) -> str:
        return f"mysql://root@{self.server.host}:{self.server.port}/{self.db}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "repo" in metafunc.fixturenames
        and getattr(metafunc.module, "BOTH_ENGINES", False)
        and metafunc.definition.get_closest_marker("cli_only") is None
    ):
        served = getattr(metafunc.module, "SERVED_TOO", False)
        metafunc.parametrize("engine_kind", (*ENGINES, SERVED) if served else ENGINES)


@pytest.fixture
def engine_kind() -> str:
    return "cli"


@pytest.fixture(scope="session")
def shared_server(
    tmp_path_factory: pytest.TempPathFactory, dolt_home: Path
) -> Iterator[DoltServer]:
    """One real ``dolt sql-server`` for the session (``local_infile`` on); each test gets
    its own database on it."""
    with DoltServer.start(tmp_path_factory.mktemp("server-data"), local_infile=True) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def dolt_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private DOLT_ROOT_PATH with an identity and no network checks, for every test."""
    if shutil.which("dolt") is None and not os.environ.get("KEDRO_DOLT_BINARY"):
        pytest.exit("dolt is not on PATH: run the tests with `make test`", returncode=2)
    home = tmp_path_factory.mktemp("dolt-root")
    names = (
        "DOLT_ROOT_PATH",
        "KEDRO_DISABLE_TELEMETRY",
        "DOLT_DISABLE_EVENT_FLUSH",
        "KEDRO_DOLT_CACHE_DIR",
        "KEDRO_DOLT_MEMO_KEY",
    )
    saved = {k: os.environ.get(k) for k in names}
    os.environ["DOLT_ROOT_PATH"] = str(home)
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    os.environ["DOLT_DISABLE_EVENT_FLUSH"] = "1"  # no detached `dolt send-metrics` per start
    # The load cache of the session, not the user's (every process the tests start too).
    os.environ["KEDRO_DOLT_CACHE_DIR"] = str(tmp_path_factory.mktemp("load-cache"))
    # The key that seals incremental memos: the session's, not the user's.
    os.environ["KEDRO_DOLT_MEMO_KEY"] = str(tmp_path_factory.mktemp("memo-key") / "memo.key")
    for key, value in [
        ("user.name", "Kedro Dolt Tests"),
        ("user.email", "tests@kedro-dolt.invalid"),
        ("metrics.disabled", "true"),
        ("versioncheck.disabled", "true"),
    ]:
        dolt(home, "config", "--global", "--add", key, value)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def repo(tmp_path: Path, engine_kind: str, request: pytest.FixtureRequest) -> Repo:
    """A Dolt database that does not exist yet (the first save creates it): a local
    repository path, or (``engine_kind`` server) a fresh database name on the shared server.
    Datasets reach it with ``**repo.args``."""
    if engine_kind == "server":
        server = request.getfixturevalue("shared_server")
        return ServerRepo.on(server, f"w{uuid.uuid4().hex[:12]}")
    if engine_kind == SERVED:
        request.getfixturevalue("run_servers")
        return ServedRepo(tmp_path / "warehouse")
    return Repo(tmp_path / "warehouse")


@pytest.fixture
def run_servers() -> Iterator[RunServers]:
    """A run's servers, as the Kedro hook opens them for a run: closed after the test."""
    with RunServers.open() as servers:
        yield servers


@pytest.fixture
def companies() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.array([1, 2, 3], dtype="int64"),
            "name": pd.Series(["Acme", "Globex", "Initech"], dtype="str"),
            "employees": np.array([10, 200, 35], dtype="int64"),
        }
    )
