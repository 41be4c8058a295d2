"""Shared fixtures: a private Dolt identity for the session, real repositories in tmp dirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kedro_dolt.engine import DoltCLIEngine, RepositoryState

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
    """Rows of a query, read with the dolt binary directly (not through the engine)."""
    out = dolt(repo, "sql", "-r", "json", "-q", query)
    return json.loads(out.splitlines()[-1])["rows"] if out.strip() else []


def state(repo: Path) -> RepositoryState:
    return DoltCLIEngine(repo).state()


@pytest.fixture(scope="session", autouse=True)
def dolt_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private DOLT_ROOT_PATH with an identity and no network checks, for every test."""
    if shutil.which("dolt") is None and not os.environ.get("KEDRO_DOLT_BINARY"):
        pytest.exit("dolt is not on PATH: run the tests with `make test`", returncode=2)
    home = tmp_path_factory.mktemp("dolt-root")
    names = ("DOLT_ROOT_PATH", "KEDRO_DISABLE_TELEMETRY", "DOLT_DISABLE_EVENT_FLUSH")
    saved = {k: os.environ.get(k) for k in names}
    os.environ["DOLT_ROOT_PATH"] = str(home)
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    os.environ["DOLT_DISABLE_EVENT_FLUSH"] = "1"  # no detached `dolt send-metrics` per start
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
def repo(tmp_path: Path) -> Path:
    """Path of a Dolt repository that does not exist yet (the first save creates it)."""
    return tmp_path / "warehouse"


@pytest.fixture
def companies() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.array([1, 2, 3], dtype="int64"),
            "name": pd.Series(["Acme", "Globex", "Initech"], dtype="str"),
            "employees": np.array([10, 200, 35], dtype="int64"),
        }
    )
