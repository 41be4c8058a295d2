"""Random sequences of saves, edits by someone else and loads, against real Dolt (issue 15).

A model keeps what the table must hold after each step. Steps: saves in all three modes (with
repeated keys, values that hash like NULL, sub-microsecond times), plain SQL updates, inserts
and deletes committed by someone else, a merge of another branch, a hard reset, lost
fingerprint files, and loads. After every step the table equals the model (dtypes included),
a save made exactly one commit if and only if the content changed, and that commit's diff is
exactly the change. Hypothesis draws the sequences from a fixed seed (``derandomize``): the
same sequences run every time, on both engines.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset
from tests.conftest import Repo, ServedRepo, ServerRepo, dolt_rows, foreign

BOTH_ENGINES = True
SERVED_TOO = True

KEYS = st.integers(min_value=0, max_value=24)
FLOATS = st.sampled_from([None, 0.0, -0.0, 1.5, 7.038378726374037e19, -2.25])
INTS = st.sampled_from([None, 0, 7, 4904004565857947459, -1])
TEXTS = st.sampled_from([None, "", "NULL", "a", "b\tc", "ünï"])
NANOS = st.sampled_from([0, 1, 999, 1000, 123456789])
COLUMNS = ["id", "f", "i", "s", "ts"]
EPOCH = pd.Timestamp("2026-01-01")


def rows_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A frame of ``(id, f, i, s, nanoseconds)`` rows with the table's dtypes, in key order
    (so it loads back as it is: the layout of other orders is tested in tests/datasets)."""
    rows = sorted(rows, key=lambda row: row[0])
    ids, floats, ints, texts, nanos = zip(*rows, strict=True) if rows else ([],) * 5
    return pd.DataFrame(
        {
            "id": np.array(ids, dtype="int64"),
            "f": pd.array(list(floats), dtype="Float64"),
            "i": pd.array(list(ints), dtype="Int64"),
            "s": pd.Series(list(texts), dtype=object),
            "ts": pd.Series(
                [EPOCH + pd.Timedelta(int(n), "ns") for n in nanos], dtype="datetime64[ns]"
            ),
        }
    )


def stored(frame: pd.DataFrame, negative_zero: bool = True) -> pd.DataFrame:
    """What Dolt holds (and a load returns) for ``frame``, sorted by key: microseconds, and
    0.0 for -0.0 unless the engine keeps it (the CLI's LOAD DATA does; the server's INSERT
    does not, so the server engine stores 0.0 on every path)."""
    out = frame.assign(ts=frame["ts"].dt.floor("us"))
    if not negative_zero:
        out = out.assign(f=out["f"] + 0.0)
    return out.sort_values("id").reset_index(drop=True)


def _cell(value: Any) -> Any:
    if pd.isna(value):
        return None
    if isinstance(value, float):
        return (value, bool(np.signbit(value)))  # -0.0 and 0.0 are different values
    return value


def row_set(frame: pd.DataFrame) -> dict[int, tuple[Any, ...]]:
    return {int(r[0]): tuple(map(_cell, r[1:])) for r in frame[COLUMNS].itertuples(index=False)}


def change(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, int]:
    before, after = row_set(old), row_set(new)
    return {
        "rows_added": len(after.keys() - before.keys()),
        "rows_deleted": len(before.keys() - after.keys()),
        "rows_modified": sum(before[k] != after[k] for k in before.keys() & after.keys()),
    }


ROW = st.tuples(KEYS, FLOATS, INTS, TEXTS, NANOS)


class Saves(RuleBasedStateMachine):
    """One table ``t`` keyed by ``id``; ``model`` is what it must hold."""

    repo_factory: Any = None
    negative_zero = True  # whether the engine keeps -0.0

    def __init__(self) -> None:
        super().__init__()
        self.repo: Repo = type(self).repo_factory()
        self.model = stored(rows_frame([]))
        self.history: list[pd.DataFrame] = []  # the table at each of main's commits
        self.saved_once = False

    # -- helpers ---------------------------------------------------------------------------

    def stored(self, frame: pd.DataFrame) -> pd.DataFrame:
        return stored(frame, self.negative_zero)

    def dataset(self, mode: str = "overwrite") -> DoltTableDataset:
        return DoltTableDataset(
            **self.repo.args, table="t", save_args={"primary_key": "id", "mode": mode}
        )

    def head(self) -> str | None:
        if not self.saved_once:
            return None
        return str(dolt_rows(self.repo, "SELECT dolt_hashof('main') AS h")[0]["h"])

    def save(self, mode: str, frame: pd.DataFrame, expected: pd.DataFrame | None) -> None:
        """Save; ``expected``: the table after it, ``None``: the save must be refused."""
        before = self.head()
        if expected is None:
            with pytest.raises(DatasetError):
                self.dataset(mode).save(frame)
            assert self.head() == before
            return
        self.dataset(mode).save(frame)
        self.saved_once = True
        expected = self.stored(expected)
        changed = change(self.model, expected)
        if before is None:  # the first save creates the table: one commit
            self.history.append(expected.copy())
        elif any(changed.values()):
            assert self.head() != before, "a change must make a commit"
            stat = dolt_rows(self.repo, "SELECT * FROM dolt_diff_stat('HEAD~1', 'HEAD', 't')")
            got = {k: int(stat[0][k]) for k in changed} if stat else dict.fromkeys(changed, 0)
            assert got == changed, "the commit's diff must be exactly the change"
            self.history.append(expected.copy())
        else:
            assert self.head() == before, "an unchanged save must make no commit"
        self.model = expected

    def foreign_commit(self, *statements: str) -> None:
        foreign(self.repo, *statements, "CALL dolt_commit('-Am', 'someone else', '--allow-empty')")

    # -- saves -----------------------------------------------------------------------------

    @rule(rows=st.lists(ROW, max_size=12))
    def overwrite(self, rows: list[tuple[Any, ...]]) -> None:
        frame = rows_frame(rows)
        unique = not self.stored(frame)["id"].duplicated().any()
        self.save("overwrite", frame, frame if unique else None)

    @precondition(lambda self: self.saved_once)
    @rule(data=st.data())
    def overwrite_edited(self, data: st.DataObject) -> None:
        """The model with a few rows changed, added or dropped: the delta path."""
        rows = [tuple(r) for r in self.model.itertuples(index=False)]
        rows = [(r[0], r[1], r[2], r[3], int((r[4] - EPOCH).value)) for r in rows]
        for _ in range(data.draw(st.integers(0, 3))):
            if rows and data.draw(st.booleans()):
                rows.pop(data.draw(st.integers(0, len(rows) - 1)))
            else:
                new = data.draw(ROW)
                rows = [r for r in rows if r[0] != new[0]] + [new]
        frame = rows_frame([tuple(None if pd.isna(v) else v for v in r) for r in rows])
        self.save("overwrite", frame, frame)

    @rule(rows=st.lists(ROW, max_size=6))
    def append(self, rows: list[tuple[Any, ...]]) -> None:
        frame = rows_frame(rows)
        keys = self.stored(frame)["id"]
        ok = not keys.duplicated().any() and not keys.isin(self.model["id"]).any()
        if not rows:
            return
        merged = pd.concat([self.model, self.stored(frame)], ignore_index=True)
        self.save("append", frame, merged if ok else None)

    @rule(rows=st.lists(ROW, min_size=1, max_size=6))
    def upsert(self, rows: list[tuple[Any, ...]]) -> None:
        frame = rows_frame(rows)
        new = self.stored(frame)
        if new["id"].duplicated().any():
            self.save("upsert", frame, None)
            return
        kept = self.model[~self.model["id"].isin(new["id"])]
        self.save("upsert", frame, pd.concat([kept, new], ignore_index=True))

    # -- someone else ------------------------------------------------------------------------

    @precondition(lambda self: self.saved_once and len(self.model))
    @rule(data=st.data(), text=TEXTS)
    def foreign_update(self, data: st.DataObject, text: str | None) -> None:
        key = int(data.draw(st.sampled_from(self.model["id"].tolist())))
        value = "NULL" if text is None else "'" + text.replace("\t", "\\t") + "'"
        self.foreign_commit(f"UPDATE t SET s = {value} WHERE id = {key}")
        self.model.loc[self.model["id"] == key, "s"] = text
        self.history.append(self.model.copy())

    @precondition(lambda self: self.saved_once)
    @rule(key=st.integers(100, 110))
    def foreign_insert(self, key: int) -> None:
        if key in set(self.model["id"]):
            return
        self.foreign_commit(
            f"INSERT INTO t (id, f, i, s, ts) VALUES ({key}, 1.25, 3, 'theirs', "
            "'2026-01-01 00:00:00.000001')"
        )
        row = rows_frame([(key, 1.25, 3, "theirs", 1000)])
        self.model = self.stored(pd.concat([self.model, row], ignore_index=True))
        self.history.append(self.model.copy())

    @precondition(lambda self: self.saved_once and len(self.model) >= 2)
    @rule(data=st.data())
    def foreign_merge(self, data: st.DataObject) -> None:
        """A branch deletes one row while main changes another; main merges the branch."""
        keys = data.draw(st.permutations(self.model["id"].tolist()))[:2]
        gone, edited = int(keys[0]), int(keys[1])
        side = f"side{uuid.uuid4().hex[:6]}"
        foreign(
            self.repo,
            f"CALL dolt_branch('{side}')",
            f"CALL dolt_checkout('{side}')",
            f"DELETE FROM t WHERE id = {gone}",
            "CALL dolt_commit('-am', 'side deletes')",
            "CALL dolt_checkout('main')",
            f"UPDATE t SET s = CONCAT(IFNULL(s, ''), '+') WHERE id = {edited}",
            "CALL dolt_commit('-am', 'main edits')",
            f"CALL dolt_merge('{side}')",
            f"CALL dolt_branch('-D', '{side}')",
        )
        at = self.model["id"] == edited
        self.model.loc[at, "s"] = (self.model.loc[at, "s"].fillna("") + "+").astype(object)
        self.history.append(self.model.copy())  # main's own commit: the merge's first parent
        self.model = self.model[self.model["id"] != gone].reset_index(drop=True)
        self.history.append(self.model.copy())

    @precondition(lambda self: len(self.history) >= 2)
    @rule()
    def foreign_reset(self) -> None:
        foreign(self.repo, "CALL dolt_reset('--hard', 'HEAD~1')")
        self.history.pop()
        self.model = self.history[-1].copy()

    @precondition(lambda self: self.saved_once)
    @rule()
    def fingerprints_lost(self) -> None:
        shutil.rmtree(self.dataset().engine.transport.cache_dir / "rows", ignore_errors=True)

    # -- after every step --------------------------------------------------------------------

    @invariant()
    def table_is_the_model(self) -> None:
        if not self.saved_once:
            return
        loaded = self.dataset().load().sort_values("id").reset_index(drop=True)
        pd.testing.assert_frame_equal(loaded, self.model.sort_values("id").reset_index(drop=True))
        assert row_set(loaded) == row_set(self.model)  # the sign of zero too


SETTINGS = settings(
    max_examples=10,
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    # Each step runs real Dolt: report a failing sequence as found, do not shrink it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
)


def test_random_sequences_keep_every_promise(
    repo: Path, tmp_path: Path, engine_kind: str, request: pytest.FixtureRequest
) -> None:
    def fresh() -> Repo:
        if engine_kind == "server":
            server = request.getfixturevalue("shared_server")
            return ServerRepo.on(server, f"w{uuid.uuid4().hex[:12]}")
        return Repo(tmp_path / uuid.uuid4().hex[:8] / "warehouse")

    class Run(Saves):
        repo_factory = staticmethod(fresh)
        negative_zero = engine_kind != "server"  # LOAD DATA keeps it; INSERTs do not

    run_state_machine_as_test(Run, settings=SETTINGS)


@pytest.mark.parametrize("layout", ["parent_server", "nested"])
def test_random_sequences_on_other_layouts(tmp_path: Path, layout: str) -> None:
    """The same sequences (issue 25) with a user's ``dolt sql-server`` on the parent directory
    of the repository (Dolt routes ``dolt`` through it, and so does kedro-dolt), and with a
    repository nested inside the one saved to, served by a run's own server."""
    import signal
    import subprocess

    from kedro_dolt.engine.run_server import RunServers
    from tests.conftest import dolt
    from tests.support.dolt_server import serve_directory

    stops: list[subprocess.Popen[bytes]] = []

    def parent_served() -> Repo:
        data = tmp_path / uuid.uuid4().hex[:8]
        repo = data / "warehouse"
        repo.mkdir(parents=True)
        dolt(repo, "init")
        stops.append(serve_directory(data))
        return ServedRepo(repo)

    def with_nested() -> Repo:
        repo = tmp_path / uuid.uuid4().hex[:8] / "warehouse"
        nested = repo / "archive"
        nested.mkdir(parents=True)
        dolt(repo, "init")
        dolt(nested, "init")
        # The nested repository's own t (other rows): never the one read or written.
        foreign(
            nested,
            "CREATE TABLE t (id BIGINT PRIMARY KEY, f DOUBLE)",
            "INSERT INTO t VALUES (99, 9.0)",
        )
        return ServedRepo(repo)

    class Run(Saves):
        repo_factory = staticmethod(parent_served if layout == "parent_server" else with_nested)
        # A user's server does not allow LOAD DATA LOCAL: rows go by INSERT, which loses -0.0.
        negative_zero = layout != "parent_server"

    servers = RunServers.open() if layout == "nested" else None
    try:
        run_state_machine_as_test(Run, settings=SETTINGS)
    finally:
        if servers is not None:
            servers.close()
        for process in stops:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
