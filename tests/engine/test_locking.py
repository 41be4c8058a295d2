"""Concurrent saves into one repository: every one lands as its own commit."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pandas as pd

from kedro_dolt import DoltTableDataset
from tests.conftest import dolt_rows, state

SAVES = 10


def _save_many(database: str, worker: int) -> None:
    # Each worker owns a table; content differs on every save, so every save is a commit.
    dataset = DoltTableDataset(
        database=database, table=f"t{worker}", save_args={"primary_key": "id"}
    )
    for i in range(SAVES):
        dataset.save(pd.DataFrame({"id": [1, 2], "value": [worker, i]}))


def _save_commits(repo: Path) -> int:
    return len(
        dolt_rows(repo, "SELECT commit_hash FROM dolt_log WHERE message LIKE 'kedro: save%'")
    )


class TestConcurrentSaves:
    def test_four_processes_ten_saves_each(self, repo):
        _save_many(str(repo), 99)  # the repository exists before the race starts
        ctx = multiprocessing.get_context("spawn")  # as ParallelRunner's workers
        workers = [ctx.Process(target=_save_many, args=(str(repo), w)) for w in range(4)]
        for p in workers:
            p.start()
        for p in workers:
            p.join(timeout=300)
        assert [p.exitcode for p in workers] == [0, 0, 0, 0]
        assert _save_commits(repo) == SAVES + 4 * SAVES
        for w in range(4):
            loaded = DoltTableDataset(database=str(repo), table=f"t{w}").load()
            assert loaded["value"].tolist() == [w, SAVES - 1]
        assert not state(repo).working_changes

    def test_threads_share_one_dataset_per_table(self, repo):
        errors: list[BaseException] = []

        def run(worker: int) -> None:
            try:
                _save_many(str(repo), worker)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert errors == []
        # The first save of each thread races to `dolt init`: exactly one init happens.
        assert _save_commits(repo) == 4 * SAVES
        assert len(dolt_rows(repo, "SELECT commit_hash FROM dolt_log")) == 4 * SAVES + 1

    def test_reads_during_writes(self, repo, companies):
        writer = DoltTableDataset(database=str(repo), table="c", save_args={"primary_key": "id"})
        writer.save(companies)
        reader = DoltTableDataset(database=str(repo), table="c")
        errors: list[BaseException] = []

        def read() -> None:
            try:
                for _ in range(SAVES):
                    assert len(reader.load()) == 3
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        for i in range(SAVES):
            writer.save(companies.assign(employees=i))
        for t in threads:
            t.join(timeout=300)
        assert errors == []
        assert _save_commits(repo) == SAVES + 1
