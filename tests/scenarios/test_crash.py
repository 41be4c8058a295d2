"""SIGKILL at random moments of big saves: nothing half-written, nothing left behind.

A child Python process saves a frame of ``ROWS`` rows through ``DoltTableDataset`` and is
killed with SIGKILL after a random delay drawn so that kills land before, during and after the
write: either its whole process group (``os.killpg``) or the Python process alone (its ``dolt``
child must then die with it). After each kill the repository is read back with the plain
``dolt`` binary, never through kedro_dolt:

* every branch head is as before, except the target, which may have exactly one new commit
  (on its first-parent line) whose table equals the frame (a kill after the commit);
* the checked-out branch is unchanged and the working sets of the target and the checked-out
  branch equal their heads (no half-written table for plain ``dolt sql`` readers);
* after the next kedro-dolt operation (a load, or a small save) no ``kedro-dolt/`` branch and
  no ``kedro-dolt-<dead pid>-*`` temp entry remains, and a save works and lands.

The seed is printed (``KEDRO_DOLT_CRASH_SEED`` replays it); ``KEDRO_DOLT_CRASH_ROWS`` and
``KEDRO_DOLT_CRASH_TRIALS`` change the size and the number of kills per variant.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import dolt
from tests.support import ROOT

ROWS = int(os.environ.get("KEDRO_DOLT_CRASH_ROWS", "300000"))
TRIALS = int(os.environ.get("KEDRO_DOLT_CRASH_TRIALS", "2"))
SEED = int(os.environ.get("KEDRO_DOLT_CRASH_SEED", str(random.SystemRandom().randrange(2**31))))
TABLE = "t"
SIDE_TABLE = "side"
SCRATCH_PREFIX = "kedro-dolt/"
TEMP_ENTRY = re.compile(r"^kedro-dolt-(\d+)-")
#: Kill delays are drawn from [0, LATE * expected save time]: the last stratum lands after it.
LATE = 1.3
#: How much longer than a plain append each strategy's save takes (merge, push), roughly.
SLOWER = {"append": 1.0, "new": 1.0, "merge": 1.4, "remote": 1.6}
CALIBRATION = 5
#: Per strategy, the seconds a save takes: the calibration at first, then what the trials
#: show (a save still running at its kill time took longer), so late kills stay late.
LEARNED: dict[str, float] = {}
READY_TIMEOUT = 120.0
SAVE_TIMEOUT = 300.0
DEATH_TIMEOUT = 5.0

Fingerprint = tuple[int, int, float, int, int]


# -- frames ---------------------------------------------------------------------------------


def make_frame(seed: int, rows: int) -> pd.DataFrame:
    """``rows`` rows keyed 0..rows-1; every float and text cell differs between seeds."""
    rng = np.random.default_rng(seed)
    keys = np.arange(rows, dtype="int64")
    salt = rng.integers(0, 2**32, rows)
    return pd.DataFrame(
        {
            "k": keys,
            "f": rng.random(rows),
            "s": pd.Series(
                [f"row-{k}-{seed}-{x:08x}" for k, x in zip(keys, salt, strict=True)], dtype="str"
            ),
        }
    )


def fingerprint(frame: pd.DataFrame) -> Fingerprint:
    """What ``FINGERPRINT_SQL`` computes in Dolt, computed in Python."""
    texts = [str(s) for s in frame["s"]]
    keyed = (zlib.crc32(f"{k}|{s}".encode()) for k, s in zip(frame["k"], texts, strict=True))
    return (
        len(frame),
        int(frame["k"].sum()),
        float(frame["f"].sum()),
        sum(zlib.crc32(s.encode()) for s in texts),
        reduce(lambda a, b: a ^ b, keyed, 0),
    )


FINGERPRINT_SQL = (
    "SELECT COUNT(*) AS n, SUM(k) AS sk, SUM(f) AS sf, SUM(CRC32(CONCAT('', s))) AS ss, "
    "BIT_XOR(CRC32(CONCAT(k, '|', s))) AS x FROM {table} AS OF '{commit}';"
)


def same_content(found: Fingerprint, expected: Fingerprint) -> bool:
    """Exact on counts, keys and texts; the float sum up to summation order."""
    return (
        found[0] == expected[0]
        and found[1] == expected[1]
        and abs(found[2] - expected[2]) <= 1e-9 * max(1.0, abs(expected[2]))
        and found[3:] == expected[3:]
    )


# -- the plain dolt binary ------------------------------------------------------------------


def dolt_sql(repo: Path, script: str, *, branch: str | None = None) -> list[list[dict[str, Any]]]:
    """Rows of each statement of ``script``, run by the dolt binary itself (not kedro_dolt)."""
    args = ["dolt", *(["--branch", branch] if branch else []), "sql", "-r", "json"]
    proc = subprocess.run(
        args, input=script, cwd=repo, capture_output=True, text=True, check=False, timeout=120
    )
    assert proc.returncode == 0, f"{' '.join(args)} <<< {script!r} failed: {proc.stderr}"
    return [json.loads(line).get("rows", []) for line in proc.stdout.splitlines() if line.strip()]


def branches(repo: Path) -> tuple[dict[str, str], str]:
    """Every branch's head, and the checked-out branch."""
    rows = dolt_sql(repo, "SELECT name, hash FROM dolt_branches; SELECT active_branch() AS b;")
    return {r["name"]: r["hash"] for r in rows[0]}, str(rows[1][0]["b"])


def heads(repo: Path) -> dict[str, str]:
    return branches(repo)[0]


def table_fingerprint(repo: Path, commit: str, table: str = TABLE) -> Fingerprint:
    row = dolt_sql(repo, FINGERPRINT_SQL.format(table=table, commit=commit))[0][0]

    def number(key: str) -> Decimal:
        return Decimal(str(row.get(key, 0)))  # JSON omits NULL sums of an empty table

    return (
        int(number("n")),
        int(number("sk")),
        float(number("sf")),
        int(number("ss")),
        int(number("x")),
    )


def parents(repo: Path, commit: str) -> list[str]:
    """Parents of ``commit``, first parent first."""
    rows = dolt_sql(
        repo,
        "SELECT parent_hash, parent_index FROM dolt_commit_ancestors "
        f"WHERE commit_hash = '{commit}' ORDER BY parent_index;",
    )[0]
    return [str(r["parent_hash"]) for r in rows if r.get("parent_hash")]


def working_changes(repo: Path, branch: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``dolt_status`` of ``branch`` and the tables whose working content differs from HEAD."""
    rows = dolt_sql(
        repo,
        "SELECT * FROM dolt_status; SELECT * FROM dolt_diff_summary('HEAD', 'WORKING');",
        branch=branch,
    )
    return (rows[0] if rows else []), (rows[1] if len(rows) > 1 else [])


# -- processes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    ppid: int
    pgrp: int
    state: str
    start: int


def proc_info(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # After the comm: state ppid pgrp session ... starttime is the 20th field after it.
    return Proc(pid, comm, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))


def all_processes() -> Iterator[Proc]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = proc_info(int(entry.name))
            if info is not None:
                yield info


def alive(proc: Proc) -> bool:
    """The same process (pid and start time) still runs (zombies are dead)."""
    now = proc_info(proc.pid)
    return now is not None and now.start == proc.start and now.state not in ("Z", "X")


def group_members(pgid: int) -> list[Proc]:
    return [p for p in all_processes() if p.pgrp == pgid and p.state not in ("Z", "X")]


def wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


@dataclass
class Variant:
    """A dataset configuration: the strategy, the branch it writes, an optional remote."""

    name: str
    branch: Any
    target: str
    remote: dict[str, Any] | None = None

    def config(self, database: Path, table: str) -> dict[str, Any]:
        return {
            "database": str(database),
            "table": table,
            "branch": self.branch,
            "remote": self.remote,
            "save_args": {"primary_key": "k"},
        }


def dataset(config: dict[str, Any]) -> Any:
    from kedro_dolt import DoltTableDataset

    return DoltTableDataset(**config)


def child_main() -> None:
    """Entry point of the child: build the frame, say READY, save, say DONE and the time."""
    job = json.loads(sys.argv[1])
    frame = make_frame(job["seed"], job["rows"])
    target = dataset(job["config"])
    print("READY", flush=True)
    started = time.monotonic()
    target.save(frame)
    print(f"DONE {time.monotonic() - started:.3f}", flush=True)


class Child:
    """A saving child process in its own session (its process group id is its pid)."""

    def __init__(
        self, config: dict[str, Any], seed: int, rows: int, env: dict[str, str], log: Path
    ) -> None:
        self.log = log
        job = json.dumps({"config": config, "seed": seed, "rows": rows})
        with log.open("wb") as stderr:
            self.popen = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from tests.scenarios.test_crash import child_main; child_main()",
                    job,
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,
            )
        self.pid = self.popen.pid

    def read_line(self, timeout: float) -> str:
        """The next stdout line, or '' at end of output or timeout."""
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], timeout)
        return self.popen.stdout.readline().strip() if ready else ""

    def stderr(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]

    def wait_ready(self) -> None:
        line = self.read_line(READY_TIMEOUT)
        assert line == "READY", f"child never got ready ({line!r}): {self.stderr()}"

    def children(self) -> list[Proc]:
        return [p for p in all_processes() if p.ppid == self.pid]

    def finished_in(self) -> float | None:
        """How long the save took, if the (dead) child reported it finished before it died."""
        for _ in range(10):  # DONE, then the end of the output: a few lines at most
            line = self.read_line(1.0)
            if line.startswith("DONE "):
                return float(line.split()[1])
            if not line:
                return None
        return None

    def close(self) -> None:
        """Kill whatever is left of the child's group and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=30)
        finally:
            wait_until(lambda: not group_members(self.pid), DEATH_TIMEOUT)
            if self.popen.stdout is not None:
                self.popen.stdout.close()


def temp_leftovers(temp_root: Path) -> list[str]:
    """kedro-dolt temp entries not owned by a live process (names without a pid count too)."""
    left = []
    for entry in temp_root.iterdir():
        if not entry.name.startswith("kedro-dolt"):
            continue
        match = TEMP_ENTRY.match(entry.name)
        if match is None or proc_info(int(match.group(1))) is None:
            left.append(entry.name)
    return sorted(left)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private system temp dir for this test and its children, to count leftovers in."""
    root = tmp_path / "systemp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture(scope="module")
def save_seconds(dolt_home: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    """About how long a child's save of ``ROWS`` rows takes here (READY to DONE), measured
    once on a fraction of the rows (saves take time linear in the rows)."""
    print(f"crash tests: seed={SEED} rows={ROWS} trials={TRIALS}")
    repo = tmp_path_factory.mktemp("calibration") / "warehouse"
    config = Variant("append", None, "main").config(repo, TABLE)
    dataset(config).save(make_frame(0, 10))
    child = Child(config, 1, ROWS // CALIBRATION, dict(os.environ), repo.parent / "child.log")
    try:
        child.wait_ready()
        line = child.read_line(SAVE_TIMEOUT)
        assert line.startswith("DONE "), f"calibration save failed: {child.stderr()}"
        assert child.popen.wait(timeout=60) == 0, child.stderr()
    finally:
        child.close()
    seconds = float(line.split()[1]) * CALIBRATION
    print(f"crash tests: a save of {ROWS} rows takes about {seconds:.2f}s")
    return seconds


# -- the test -------------------------------------------------------------------------------

VARIANTS = ["append", "new", "merge", "remote"]
KILLS = ["group", "python"]


def make_variant(name: str, tmp_path: Path) -> Variant:
    if name == "append":
        return Variant(name, None, "main")
    if name == "new":
        return Variant(name, {"strategy": "new", "name": "exp", "start_point": "main"}, "exp")
    if name == "merge":
        return Variant(name, {"strategy": "merge", "from": "base", "into": "main"}, "main")
    remote = {"name": "origin", "url": f"file://{tmp_path / 'remote'}"}
    return Variant(name, None, "main", remote)


def prepare_merge(repo: Path, trial: int) -> None:
    """Point ``base`` at main, then move main on in another table: the save's merge is a real
    (non-fast-forward) merge without conflicts."""
    dolt(repo, "branch", "-f", "base", "main")
    dolt(repo, "sql", "-q", f"INSERT INTO other VALUES ({trial}, 'moved on');")
    dolt(repo, "add", "other")
    dolt(repo, "commit", "-m", f"main moves on ({trial})")


def check_after_kill(
    repo: Path,
    variant: Variant,
    before: dict[str, str],
    active: str,
    seed: int,
    where: str,
) -> bool:
    """The repository as the plain binary sees it right after the kill; True if committed."""
    after, now_active = branches(repo)
    for name, head in before.items():
        assert name in after, f"{where}: branch {name!r} disappeared"
        if name != variant.target:
            assert after[name] == head, f"{where}: branch {name!r} moved"
    strays = sorted(set(after) - set(before) - {n for n in after if n.startswith(SCRATCH_PREFIX)})
    assert not strays, f"{where}: unexpected new branches {strays}"
    assert now_active == active, f"{where}: the checked-out branch changed"
    committed = after[variant.target] != before[variant.target]
    if committed:
        new = after[variant.target]
        found = parents(repo, new)
        if variant.name == "merge":
            assert found[:1] == [before[variant.target]], f"{where}: {new} is not one commit on"
        else:
            assert found == [before[variant.target]], f"{where}: {new} is not one commit on"
        expected = fingerprint(make_frame(seed, ROWS))
        got = table_fingerprint(repo, new)
        assert same_content(got, expected), f"{where}: committed table {got} != frame {expected}"
    for branch in dict.fromkeys([variant.target, active]):
        status, differs = working_changes(repo, branch)
        assert status == [], f"{where}: working set of {branch!r} is not clean: {status}"
        assert differs == [], f"{where}: working tables of {branch!r} differ from HEAD: {differs}"
    return committed


def check_cleaned(repo: Path, temp_root: Path, where: str) -> None:
    left = sorted(n for n in heads(repo) if n.startswith(SCRATCH_PREFIX))
    assert left == [], f"{where}: kedro-dolt branches are left: {left}"
    entries = temp_leftovers(temp_root)
    assert entries == [], f"{where}: temp entries of dead processes are left: {entries}"


def kill(child: Child, mode: str, where: str) -> None:
    """SIGKILL the group, or the Python process alone and check its children die with it."""
    # The child may have finished (a late kill): it stays a zombie in its group until reaped.
    if mode == "group":
        os.killpg(child.pid, signal.SIGKILL)
        child.popen.wait(timeout=30)
    else:
        children = child.children()  # found before the kill: afterwards they are orphans
        os.kill(child.pid, signal.SIGKILL)
        child.popen.wait(timeout=30)
        wait_until(lambda: not any(alive(c) for c in children), DEATH_TIMEOUT)
        survivors = [f"{c.pid} ({c.comm})" for c in children if alive(c)]
        assert not survivors, f"{where}: children outlived the killed Python process: {survivors}"
    gone = wait_until(lambda: not group_members(child.pid), DEATH_TIMEOUT)
    assert gone, f"{where}: processes of the killed save still run: {group_members(child.pid)}"


@pytest.mark.parametrize("mode", KILLS)
@pytest.mark.parametrize("name", VARIANTS)
def test_sigkill_during_save(
    name: str, mode: str, tmp_path: Path, temp_root: Path, save_seconds: float
) -> None:
    rng = random.Random(f"{SEED}-{name}-{mode}")
    variant = make_variant(name, tmp_path)
    repo = tmp_path / "warehouse"
    config = variant.config(repo, TABLE)
    # The merge strategy merges from `base`: the repository starts through a plain append.
    first = (
        config if variant.name != "merge" else make_variant("append", tmp_path).config(repo, TABLE)
    )
    dataset(first).save(make_frame(rng.randrange(2**31), 20))
    dataset({**first, "table": SIDE_TABLE}).save(make_frame(rng.randrange(2**31), 5))
    if variant.name == "merge":
        dolt(repo, "sql", "-q", "CREATE TABLE other (id int primary key, note text);")
        dolt(repo, "add", "other")
        dolt(repo, "commit", "-m", "another table")
        dolt(repo, "branch", "base", "main")
    env = dict(os.environ)
    expected = LEARNED.setdefault(name, save_seconds * SLOWER[name])
    for trial in range(TRIALS):
        seed = rng.randrange(2**31)
        # Stratified over [0, LATE * expected]: early, middle, late (after the save) kills.
        delay = expected * LATE * (trial + rng.random()) / TRIALS
        where = f"{name}/{mode} trial {trial} (seed={SEED}, frame seed={seed}, delay={delay:.2f}s)"
        print(where)
        if variant.name == "merge":
            prepare_merge(repo, trial)
        before, active = branches(repo)
        child = Child(config, seed, ROWS, env, tmp_path / f"child-{trial}.log")
        try:
            child.wait_ready()
            time.sleep(delay)
            kill(child, mode, where)
            took = child.finished_in()
        finally:
            child.close()
        committed = check_after_kill(repo, variant, before, active, seed, where)
        print(f"  the save finished before the kill: {took is not None}; committed: {committed}")
        if took is not None:
            expected = LEARNED[name] = took
        elif not committed and delay > expected:  # slower than thought: aim later next time
            expected = LEARNED[name] = delay * 1.25

        # The next kedro-dolt operation (a load on odd trials, a save on even ones) cleans up
        # after the dead process; then a save lands.
        if variant.name == "merge":
            dolt(repo, "branch", "-f", "base", "main")
        small = make_frame(seed + 1, 30)
        head = heads(repo)[variant.target]
        if trial % 2:
            side = dataset({**config, "table": SIDE_TABLE}).load()
            assert len(side) == 5, where
            check_cleaned(repo, temp_root, f"{where}, after a load")
        dataset(config).save(small)
        check_cleaned(repo, temp_root, f"{where}, after a save")
        new_head = heads(repo)[variant.target]
        assert new_head != head, f"{where}: the next save made no commit"
        assert parents(repo, new_head)[:1] == [head], f"{where}: the next save is not one commit"
        got = table_fingerprint(repo, new_head)
        assert same_content(got, fingerprint(small)), f"{where}: the next save stored {got}"
        for branch in dict.fromkeys([variant.target, active]):
            assert working_changes(repo, branch) == ([], []), f"{where}: {branch!r} not clean"

    if variant.remote is not None:
        dolt(repo, "fetch", "origin")
        tracking = dolt_sql(
            repo, "SELECT hash FROM dolt_remote_branches WHERE name = 'remotes/origin/main';"
        )[0]
        assert [r["hash"] for r in tracking] == [heads(repo)["main"]], "remote is not in step"
