"""Plain ``dolt sql`` readers during saves: no save fails, every save lands, no reader fails.

A reader that opens the repository while a save holds it loses Dolt's own lock and reads
read-only; a save must not then fail on Dolt's transient optimistic-concurrency errors
("cannot update manifest", "database is read only"), and the reader must never see a
half-written table.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pandas as pd

from kedro_dolt import DoltTableDataset
from tests.conftest import dolt_rows

SAVES = 100
ROWS = 20
READERS = 2
#: Hard bounds: the readers stop when the saves are done, or after this long at the latest.
READER_SECONDS = 600.0
MAX_READS = 20_000


def frame(i: int) -> pd.DataFrame:
    """Always ``ROWS`` rows; every value differs from save to save."""
    return pd.DataFrame({"id": range(ROWS), "value": [i * 1000 + r for r in range(ROWS)]})


class Reader(threading.Thread):
    """``dolt sql -q "select count(*) from t"`` in a loop, the plain binary in the repo dir."""

    def __init__(self, repo: Path, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.repo = repo
        self.stop = stop
        self.reads = 0
        self.failures: list[str] = []

    def run(self) -> None:
        deadline = time.monotonic() + READER_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline and self.reads < MAX_READS:
            proc = subprocess.run(
                ["dolt", "sql", "-r", "csv", "-q", "select count(*) from t"],
                cwd=self.repo,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            self.reads += 1
            if proc.returncode != 0:
                self.failures.append(proc.stderr.strip() or proc.stdout.strip())
            elif proc.stdout.split() != ["count(*)", str(ROWS)]:
                self.failures.append(f"read {proc.stdout!r}, not {ROWS} rows")


def test_saves_during_an_external_reader_loop(repo: Path) -> None:
    dataset = DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"})
    dataset.save(frame(-1))  # the repository and the table exist before the readers start
    commits_before = len(dolt_rows(repo, "SELECT commit_hash FROM dolt_log"))
    stop = threading.Event()
    readers = [Reader(repo, stop) for _ in range(READERS)]
    for reader in readers:
        reader.start()
    failed: list[str] = []
    try:
        started = time.monotonic()  # let every reader get going first (at most 30 s)
        while min(r.reads for r in readers) == 0 and time.monotonic() - started < 30:
            time.sleep(0.05)
        for i in range(SAVES):
            try:
                dataset.save(frame(i))
            except Exception as exc:  # counted and shown below
                failed.append(f"save {i}: {exc}")
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=180)
    assert not any(r.is_alive() for r in readers), "a reader did not stop"
    reads = sum(r.reads for r in readers)
    reader_failures = [f for r in readers for f in r.failures]
    assert failed == [], f"{len(failed)} of {SAVES} saves failed during {reads} reads: {failed[:3]}"
    assert reader_failures == [], f"{len(reader_failures)} of {reads} reads failed: " + "; ".join(
        reader_failures[:5]
    )
    assert reads >= SAVES // 10, f"the readers ran only {reads} times: no real concurrency"
    commits = len(dolt_rows(repo, "SELECT commit_hash FROM dolt_log"))
    assert commits - commits_before == SAVES
    stored = dolt_rows(repo, "SELECT id, value FROM t ORDER BY id")
    assert stored == frame(SAVES - 1).to_dict(orient="records")
    assert dolt_rows(repo, "SELECT COUNT(*) AS n FROM dolt_status") == [{"n": 0}]
