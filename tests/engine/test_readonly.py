"""A user who may read but not write a repository's directory still loads from it.

The reads run as an unprivileged user: root ignores file permissions. The Python that runs
the tests may live where that user cannot go (a pyenv under /root), so the child is a fork
that drops to ``nobody`` and goes on with the modules already imported, not a new
interpreter. The dolt binary is copied where that user can run it.

Dolt 1.86 opens ``.dolt/noms/LOCK`` and its chunk journal read-write even for a SELECT and
writes LOCK and manifest with mode 0600, so only the owner of the ``.dolt`` store can read a
repository at all. What kedro-dolt must not add is a need to write the directory around it,
where its lock file lives: here that directory belongs to root and the store to the reader
(like a repository directory made read-only, or a store handed over to the reader).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kedro_dolt import DoltTableDataset
from kedro_dolt.engine import BINARY_ENV, DoltCLIEngine, RepositoryState
from kedro_dolt.engine.locking import LOCK_FILE, repository_lock
from tests.conftest import state

NOBODY = 65534
KEY = {"primary_key": "id"}


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for entry in path.rglob("*"):
        os.chown(entry, uid, uid)


def _read_only(path: Path) -> None:
    """Readable by everyone, writable by nobody but root, for ``path`` and all it holds."""
    for entry in [path, *path.rglob("*")]:
        entry.chmod(0o755 if entry.is_dir() else 0o644)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Path]:
    """A directory every user can enter, with a dolt binary and a Dolt home for ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the reader as another user")
    base = Path(tempfile.mkdtemp(prefix="kedro-dolt-readonly-"))
    try:
        base.chmod(0o755)
        binary = os.environ.get(BINARY_ENV) or shutil.which("dolt")
        assert binary is not None
        (base / "bin").mkdir(mode=0o755)
        shutil.copy(binary, base / "bin" / "dolt")
        (base / "bin" / "dolt").chmod(0o755)
        home = base / "home"
        home.mkdir()
        for key, value in [
            ("user.name", "Reader"),
            ("user.email", "reader@kedro-dolt.invalid"),
            ("metrics.disabled", "true"),
            ("versioncheck.disabled", "true"),
        ]:
            subprocess.run(
                [str(base / "bin" / "dolt"), "config", "--global", "--add", key, value],
                env={**os.environ, "DOLT_ROOT_PATH": str(home)},
                check=True,
                capture_output=True,
            )
        _chown_tree(home, NOBODY)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_nobody(sandbox: Path, action: Callable[[], Any]) -> dict[str, Any]:
    """Run ``action`` in a fork that has become ``nobody``: ``{"value": ...}`` or
    ``{"error": type, "message": str}``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            signal.alarm(60)  # a hung child must not hang the test run
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.environ.update(
                DOLT_ROOT_PATH=str(sandbox / "home"),
                HOME=str(sandbox / "home"),
                **{BINARY_ENV: str(sandbox / "bin" / "dolt")},
            )
            os.chdir(sandbox)
            try:
                result: dict[str, Any] = {"value": action()}
            except BaseException as exc:
                result = {
                    "error": type(exc).__name__,
                    "message": str(exc),
                    "traceback": traceback.format_exc(),
                }
            os.write(write_end, json.dumps(result, default=str).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    assert payload, "the child process died without a result"
    return dict(json.loads(payload))


def _wait_until_locked(path: Path) -> None:
    """Return once another process holds an exclusive flock on ``path``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        finally:
            os.close(fd)
        time.sleep(0.01)
    raise AssertionError(f"nobody locked {path}")


@pytest.fixture(params=["lock file exists", "no lock file"])
def shared_repo(request, sandbox, companies) -> Iterator[tuple[Path, RepositoryState]]:
    """A repository whose directory is root's (read-only to others) and whose .dolt store is
    the reader's; with its state before the test."""
    repo = Path(tempfile.mkdtemp(prefix="repo-", dir=sandbox))
    dataset = DoltTableDataset(database=str(repo), table="c", save_args=KEY)
    dataset.save(companies)
    dataset.load()  # imports everything a load needs before the fork
    before = state(repo)  # now: a root dolt may rewrite store files as root's own
    if request.param == "no lock file":
        (repo / LOCK_FILE).unlink()
    _read_only(repo)
    _chown_tree(repo / ".dolt", NOBODY)
    yield repo, before
    shutil.rmtree(repo, ignore_errors=True)


class TestReadOnlyRepository:
    def test_the_reader_cannot_write_the_directory(self, sandbox, shared_repo):
        # Guards the set-up: the child is really bound by the permissions.
        probe = shared_repo[0] / "probe"
        outcome = as_nobody(sandbox, lambda: probe.write_text("x"))
        assert outcome.get("error") == "PermissionError"
        assert not probe.exists()

    def test_loads_and_other_reads(self, sandbox, shared_repo, companies):
        shared_repo, before = shared_repo
        lock_existed = (shared_repo / LOCK_FILE).exists()

        def reads() -> dict[str, Any]:
            dataset = DoltTableDataset(database=str(shared_repo), table="c")
            engine = DoltCLIEngine(shared_repo)
            return {
                "frame": dataset.load().to_dict("list"),
                "exists": dataset.exists(),
                "preview": dict(dataset.preview(nrows=1)),
                "has_table": engine.has_table("c", ref="main"),
                "log": len(engine.log("main")),
                "state": engine.state().checked_out,
                "tags": engine.tags(),
                "resolve": engine.resolve("main") == before.heads["main"],
            }

        outcome = as_nobody(sandbox, reads)
        assert "error" not in outcome, outcome.get("traceback")
        value = outcome["value"]
        assert value["frame"] == companies.to_dict("list")
        assert value["exists"] is True
        assert value["preview"]["data"] == [[1, "Acme", 10]]
        assert value["has_table"] is True
        assert value["log"] == 2
        assert value["state"] == "main"
        assert value["tags"] == {}
        assert value["resolve"] is True
        assert (shared_repo / LOCK_FILE).exists() == lock_existed  # before root's reads below
        assert state(shared_repo) == before

    def test_save_fails_clearly_and_changes_nothing(self, sandbox, shared_repo, companies):
        shared_repo, before = shared_repo
        entries = sorted(p.name for p in shared_repo.iterdir())

        def save() -> None:
            DoltTableDataset(database=str(shared_repo), table="c", save_args=KEY).save(
                companies.assign(employees=0)
            )

        outcome = as_nobody(sandbox, save)
        assert outcome.get("error") == "DoltError", outcome
        assert f"Cannot write to the Dolt repository at {shared_repo}" in outcome["message"]
        assert "Nothing was changed" in outcome["message"]
        assert "Fix: run as the user who owns the repository" in outcome["message"]
        assert sorted(p.name for p in shared_repo.iterdir()) == entries  # before root's reads
        assert state(shared_repo) == before
        assert DoltTableDataset(database=str(shared_repo), table="c").load().equals(companies)

    def test_a_reader_still_waits_for_a_writer(self, sandbox, shared_repo):
        """The lock file opened read-only still takes the shared lock: a kedro-dolt writer
        holding the repository keeps the reader out, as for any reader."""
        shared_repo, _ = shared_repo
        # The owner (root here) made the lock file; the reader may only open it read-only.
        (shared_repo / LOCK_FILE).touch(mode=0o644)
        # The writer is another process: a fork would inherit (and keep) a lock held here.
        writer = subprocess.Popen(
            ["flock", "--exclusive", str(shared_repo / LOCK_FILE), "sleep", "1.5"]
        )
        _wait_until_locked(shared_repo / LOCK_FILE)

        def wait_for_the_lock() -> float:
            started = time.monotonic()
            with repository_lock(shared_repo, exclusive=False):
                return time.monotonic() - started

        outcome = as_nobody(sandbox, wait_for_the_lock)
        assert writer.wait(timeout=30) == 0
        assert "error" not in outcome, outcome.get("traceback")
        assert outcome["value"] >= 0.5


def test_store_not_writable_either(sandbox, companies):
    """Dolt cannot even read then: a clear error, not Dolt's bare "permission denied"."""
    repo = Path(tempfile.mkdtemp(prefix="repo-", dir=sandbox))
    try:
        dataset = DoltTableDataset(database=str(repo), table="c", save_args=KEY)
        dataset.save(companies)
        dataset.load()
        _read_only(repo)  # root's, store included
        outcome = as_nobody(
            sandbox, lambda: DoltTableDataset(database=str(repo), table="c").load().shape
        )
        assert outcome.get("error") == "DoltError", outcome
        assert "needs write access to .dolt/noms/LOCK even to read" in outcome["message"]
        assert "Fix: run as the user who owns the repository's .dolt" in outcome["message"]
    finally:
        shutil.rmtree(repo, ignore_errors=True)
