"""The benchmark of issue 9: kedro-dolt next to raw Dolt, the seed path and Parquet.

Prints Markdown tables: every goal of issue 9 (medians of N runs with min-max, the ratio,
the goal, met or not) and the dolt process starts per operation. Usage::

    python bench/bench_goals.py [--sizes 10000,100000,1000000] [--repeats 3]
                                [--only save,load,resave,memory,small,run,procs]
                                [--code worktree|REV]

Needs ``dolt`` on PATH (``make dolt``). Everything happens in a temporary directory with its
own DOLT_ROOT_PATH; every measurement gets a fresh repository. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kedro_projects
import numpy as np
import pandas as pd
from dolt_starts import Starts, count_starts, counting_wrapper, starts_table
from kedro_datasets.pandas import ParquetDataset

if TYPE_CHECKING:
    from kedro_dolt import DoltTableDataset

SECTIONS = ("save", "load", "resave", "memory", "small", "run", "procs")
SIZES = (10_000, 100_000, 1_000_000)
TABLE = "bench"
KEY = "id"
SMALL_ROWS = 10
PROCS_ROWS = 1_000
REPO_ROOT = Path(__file__).resolve().parent.parent

Action = Callable[[], object]


# -- data ----------------------------------------------------------------------------------


def make_frame(rows: int, *, start: int = 0, seed: int = 42) -> pd.DataFrame:
    """int64 key, float64, str with NULLs, datetime64, bool and nullable Int64 columns.

    No empty strings: the seed path's CSV would turn them into NULL, making its "unchanged"
    re-save a real change.
    """
    rng = np.random.default_rng(seed)
    words = np.array(["alpha", "beta", "gamma delta", "ünïcode", "tab\there"], dtype=object)
    name = pd.Series(words[rng.integers(0, len(words), rows)], dtype="str")
    name[rng.random(rows) < 0.05] = None
    score = pd.array(rng.integers(-(10**9), 10**9, rows), dtype="Int64")
    score[rng.random(rows) < 0.1] = pd.NA
    created = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**12, rows), unit="us")
    return pd.DataFrame(
        {
            KEY: np.arange(start, start + rows, dtype="int64"),
            "amount": rng.normal(100, 30, rows),
            "name": name,
            "created": created,
            "flag": rng.random(rows) < 0.5,
            "score": score,
        }
    ).astype({"created": "datetime64[ns]"})


def one_percent(frame: pd.DataFrame) -> int:
    return max(1, len(frame) // 100)


def changed_rows(frame: pd.DataFrame) -> np.ndarray:
    """Positions of 1 % of the rows, spread over the table."""
    return np.random.default_rng(7).choice(len(frame), one_percent(frame), replace=False)


def modified(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with 1 % of its rows changed in one column."""
    out = frame.copy(deep=True)
    out.loc[changed_rows(frame), "amount"] += 1.0
    return out


def new_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """1 % as many rows as the frame, with keys after the frame's."""
    return make_frame(one_percent(frame), start=len(frame), seed=8)


def appended(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame plus 1 % new rows."""
    return pd.concat([frame, new_rows(frame)], ignore_index=True)


# -- dolt, environment ---------------------------------------------------------------------


def dolt_binary() -> str:
    found = shutil.which("dolt")
    if found is None:
        sys.exit("dolt is not on PATH: run `make dolt`, or `make bench`.")
    return str(Path(found).resolve())


DOLT = dolt_binary()


def dolt(cwd: Path, *args: str) -> bytes:
    """Run the real dolt binary; raise with its message on failure."""
    env = {**os.environ, "DOLT_DISABLE_EVENT_FLUSH": "1"}
    proc = subprocess.run([DOLT, *args], cwd=cwd, env=env, capture_output=True, check=False)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise RuntimeError(f"dolt {' '.join(args)} failed: {message}")
    return proc.stdout


def isolated_environment(root: Path) -> tuple[str, str]:
    """Point Dolt, Kedro and the load cache of this process (and what it starts) at fresh
    places under ``root``; the Dolt version line and the load average now, for a table's
    header."""
    os.environ.update(
        DOLT_ROOT_PATH=str(dolt_home(root / "dolt-home")),
        DOLT_DISABLE_EVENT_FLUSH="1",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        KEDRO_DOLT_CACHE_DIR=str(root / "load-cache"),
    )
    os.environ.pop("KEDRO_DOLT_BINARY", None)
    version = subprocess.run(
        ["dolt", "version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    return version, ", ".join(f"{x:.1f}" for x in os.getloadavg())


def dolt_home(path: Path, *, metrics: bool = False) -> Path:
    """A DOLT_ROOT_PATH with an identity and no version check (and no metrics, by default)."""
    path.mkdir(parents=True)
    settings = {
        "user.name": "kedro-dolt bench",
        "user.email": "bench@kedro-dolt.invalid",
        "versioncheck.disabled": "true",
    }
    if not metrics:
        settings["metrics.disabled"] = "true"
    with environ(DOLT_ROOT_PATH=str(path)):
        for key, value in settings.items():
            dolt(path, "config", "--global", "--add", key, value)
    return path


@contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the block."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    dolt(path, "init")
    return path


def dataset(repo: Path, *, mode: str | None = None, **kwargs: Any) -> DoltTableDataset:
    """The benchmarked dataset: a keyed table; ``mode`` is ``save_args.mode`` if given."""
    from kedro_dolt import DoltTableDataset  # from the snapshot (see ``on_snapshot``)

    save_args: dict[str, Any] = {"primary_key": KEY} | ({"mode": mode} if mode else {})
    return DoltTableDataset(database=str(repo), table=TABLE, save_args=save_args, **kwargs)


def kedro_dolt_repo(path: Path, frame: pd.DataFrame) -> Path:
    """A repository whose table holds ``frame``, saved by kedro-dolt."""
    init_repo(path)
    dataset(path).save(frame)
    return path


# -- the seed path and raw Dolt (references) -----------------------------------------------


def seed_save(repo: Path, frame: pd.DataFrame, csv: Path) -> None:
    """The seed path: ``df.to_csv`` + ``dolt table import -r`` + ``dolt add`` + commit."""
    frame.to_csv(csv, index=False)
    dolt(repo, "table", "import", "-r", TABLE, str(csv))
    dolt(repo, "add", TABLE)
    dolt(repo, "commit", "--skip-empty", "-m", "seed save")


def seed_load(repo: Path, csv: Path) -> pd.DataFrame:
    """The seed path's load: ``dolt table export`` to CSV + ``pd.read_csv``."""
    dolt(repo, "table", "export", TABLE, str(csv))
    return pd.read_csv(csv)


def raw_import(repo: Path, ready_csv: Path) -> None:
    """Dolt alone: ``dolt table import -c`` of a ready CSV + ``dolt add`` + ``dolt commit``."""
    dolt(repo, "table", "import", "-c", "--pk", KEY, TABLE, str(ready_csv))
    dolt(repo, "add", TABLE)
    dolt(repo, "commit", "-m", "raw import")


def raw_export(repo: Path, csv: Path) -> None:
    dolt(repo, "table", "export", TABLE, str(csv))


# -- timing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """Wall-clock seconds of repeated runs."""

    times: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def __str__(self) -> str:
        return f"{secs(self.median)} ({secs(min(self.times))}-{secs(max(self.times))})"


def secs(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


@dataclass(frozen=True)
class Trial:
    """``setup(work_dir)`` prepares (untimed) and returns the timed action; ``check`` runs
    once, untimed, after the first run (it proves the fast thing did the right thing)."""

    setup: Callable[[Path], Action]
    check: Callable[[Path], None] | None = None


def measure(root: Path, trials: dict[str, Trial], repeats: int) -> dict[str, Sample]:
    """Run the trials interleaved (a, b, a, b, ...), each in a fresh work directory."""
    times: dict[str, list[float]] = {name: [] for name in trials}
    for run in range(repeats):
        for name, trial in trials.items():
            work = Path(tempfile.mkdtemp(dir=root, prefix="trial-"))
            try:
                action = trial.setup(work)
                start = time.perf_counter()
                action()
                times[name].append(time.perf_counter() - start)
                if run == 0 and trial.check is not None:
                    trial.check(work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            progress(f"  {name}: {secs(times[name][-1])} s")
    return {name: Sample(tuple(values)) for name, values in times.items()}


def progress(message: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- result rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """``ratio`` (ours / reference) at most ``limit``, or ``limit`` x faster than it."""

    limit: float
    faster: bool = False

    def met(self, ratio: float) -> bool:
        return ratio <= (1 / self.limit if self.faster else self.limit)

    def __str__(self) -> str:
        return f">= {self.limit:g}x faster" if self.faster else f"<= {self.limit:g}x"


@dataclass(frozen=True)
class Row:
    what: str
    rows: int
    ours: str
    reference: str
    ratio: str
    goal: str = "--"
    met: str = ""
    order: int = 0


ROWS: list[Row] = []


def ratio_text(ratio: float, faster: bool) -> str:
    if faster:
        return f"{1 / ratio:.2f}x faster" if ratio <= 1 else f"{ratio:.2f}x slower"
    return f"{ratio:.2f}x"


def add_row(
    what: str,
    rows: int,
    ours: Sample,
    ref: Sample,
    goal: Goal | None = None,
    *,
    faster: bool = False,
) -> None:
    """A timing row; ``faster`` (implied by a "faster" goal) shows the ratio as a speed-up."""
    ratio = ours.median / ref.median
    ROWS.append(
        Row(
            what=what,
            rows=rows,
            ours=str(ours),
            reference=str(ref),
            ratio=ratio_text(ratio, faster or (goal is not None and goal.faster)),
            goal=str(goal) if goal else "--",
            met=("met" if goal.met(ratio) else "not met") if goal else "",
            order=len(ROWS),
        )
    )


def goals_table() -> str:
    lines = [
        "| what | rows | kedro-dolt s, median (min-max) | reference s, median (min-max) "
        "| ratio | goal | met? |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for row in sorted(ROWS, key=lambda r: (ISSUE_ROWS.index(r.what), r.rows, r.order)):
        lines.append(
            f"| {row.what} | {row.rows:,} | {row.ours} | {row.reference} | {row.ratio} "
            f"| {row.goal} | {row.met} |"
        )
    return "\n".join(lines)


# The rows of issue 9's table, in its order.
FULL_SAVE = "full save into a new table vs raw `dolt table import -c` + add + commit"
FULL_LOAD = "full load vs `dolt table export` to CSV"
SEED_LOAD = "full load vs the seed path's load (export + `pd.read_csv`)"
RESAVE_SAME = "re-save of an unchanged frame vs the seed path"
RESAVE_MOD = "re-save with 1% of rows modified vs the seed path"
RESAVE_APP = "re-save with 1% of rows appended vs the seed path"
UPSERT = "save of just the 1% modified rows, `save_args.mode: upsert`, vs the seed path re-save"
APPEND = "save of just the 1% new rows, `save_args.mode: append`, vs the seed path re-save"
MEMORY = "Python peak memory of a full save (peak RSS delta) vs the frame's memory_usage(deep)"
SMALL_SAVE = "10-row save vs kedro-datasets `pandas.ParquetDataset`"
SMALL_LOAD = "10-row load vs kedro-datasets `pandas.ParquetDataset`"
RUN_FRESH = "`kedro run`, 10 chained nodes, fresh repo vs the same on `pandas.ParquetDataset`"
RUN_AGAIN = "`kedro run` again, data unchanged vs the same on `pandas.ParquetDataset`"
ISSUE_ROWS = [
    FULL_SAVE,
    FULL_LOAD,
    SEED_LOAD,
    RESAVE_SAME,
    RESAVE_MOD,
    RESAVE_APP,
    UPSERT,
    APPEND,
    MEMORY,
    SMALL_SAVE,
    SMALL_LOAD,
    RUN_FRESH,
    RUN_AGAIN,
]


# -- sections ------------------------------------------------------------------------------


@dataclass
class Bench:
    root: Path
    repeats: int
    templates: dict[str, Path] = field(default_factory=dict)

    def template(self, name: str, frame: pd.DataFrame) -> Path:
        """A kedro-dolt-saved repository of ``frame``, built once and copied per trial."""
        if name not in self.templates:
            self.templates[name] = kedro_dolt_repo(self.root / "templates" / name, frame)
        return self.templates[name]

    def copy(self, name: str, frame: pd.DataFrame, work: Path) -> Path:
        return Path(shutil.copytree(self.template(name, frame), work / "repo"))

    def drop_templates(self) -> None:
        for path in self.templates.values():
            shutil.rmtree(path, ignore_errors=True)
        self.templates.clear()


def equal_check(expected: pd.DataFrame) -> Callable[[Path], None]:
    """After a kedro-dolt save in ``work/repo``: the table, loaded back, is the frame."""

    def check(work: Path) -> None:
        got = dataset(work / "repo").load()
        pd.testing.assert_frame_equal(expected, got.reset_index(drop=True))

    return check


def bench_save(bench: Bench, frame: pd.DataFrame) -> None:
    ready = bench.root / "ready.csv"
    frame.to_csv(ready, index=False)

    def ours(work: Path) -> Action:
        ds = dataset(init_repo(work / "repo"))
        return lambda: ds.save(frame)

    def raw(work: Path) -> Action:
        repo = init_repo(work / "repo")
        return lambda: raw_import(repo, ready)

    result = measure(
        bench.root,
        {"kedro-dolt save": Trial(ours, equal_check(frame)), "raw import": Trial(raw)},
        bench.repeats,
    )
    add_row(FULL_SAVE, len(frame), result["kedro-dolt save"], result["raw import"], Goal(1.10))
    ready.unlink()


def bench_load(bench: Bench, frame: pd.DataFrame) -> None:
    def ours(work: Path) -> Action:
        ds = dataset(bench.copy("base", frame, work))
        return ds.load

    def export(work: Path) -> Action:
        repo = bench.copy("base", frame, work)
        return lambda: raw_export(repo, work / "out.csv")

    def seed(work: Path) -> Action:
        repo = bench.copy("base", frame, work)
        return lambda: seed_load(repo, work / "out.csv")

    result = measure(
        bench.root,
        {
            "kedro-dolt load": Trial(ours, equal_check(frame)),
            "dolt table export": Trial(export),
            "seed load": Trial(seed),
        },
        bench.repeats,
    )
    ours_sample = result["kedro-dolt load"]
    add_row(FULL_LOAD, len(frame), ours_sample, result["dolt table export"], Goal(1.25))
    add_row(SEED_LOAD, len(frame), ours_sample, result["seed load"])


@dataclass(frozen=True)
class Resave:
    """A re-save of the base frame as ``new``; with ``mode``, also the save of just the
    changed rows (``delta``) in that ``save_args.mode``, an informational row ``mode_what``."""

    what: str
    new: pd.DataFrame
    goal: Goal
    mode: str | None = None
    delta: pd.DataFrame | None = None
    mode_what: str = ""


def resaves(frame: pd.DataFrame) -> list[Resave]:
    changed, added = modified(frame), appended(frame)
    return [
        Resave(RESAVE_SAME, frame.copy(deep=True), Goal(20, faster=True)),
        Resave(
            RESAVE_MOD,
            changed,
            Goal(3, faster=True),
            "upsert",
            changed.iloc[np.sort(changed_rows(frame))].reset_index(drop=True),
            UPSERT,
        ),
        Resave(RESAVE_APP, added, Goal(3, faster=True), "append", new_rows(frame), APPEND),
    ]


def bench_resave(bench: Bench, frame: pd.DataFrame) -> None:
    for case in resaves(frame):

        def ours(work: Path, new: pd.DataFrame = case.new) -> Action:
            ds, data = dataset(bench.copy("base", frame, work)), new.copy(deep=True)
            return lambda: ds.save(data)  # a new frame object with the same content

        def seed(work: Path, new: pd.DataFrame = case.new) -> Action:
            repo = bench.copy("base", frame, work)
            return lambda: seed_save(repo, new, work / "rows.csv")

        def in_mode(work: Path, case: Resave = case) -> Action:
            ds = dataset(bench.copy("base", frame, work), mode=case.mode)
            return lambda: ds.save(case.delta)

        trials = {
            "kedro-dolt re-save": Trial(ours, equal_check(case.new)),
            "seed re-save": Trial(seed),
        }
        if case.mode is not None:
            trials[f"kedro-dolt {case.mode}"] = Trial(in_mode, equal_check(case.new))
        progress(f" {case.what}")
        result = measure(bench.root, trials, bench.repeats)
        seed_sample = result["seed re-save"]
        add_row(case.what, len(frame), result["kedro-dolt re-save"], seed_sample, case.goal)
        if case.mode is not None:
            add_row(
                case.mode_what,
                len(frame),
                result[f"kedro-dolt {case.mode}"],
                seed_sample,
                faster=True,
            )


def bench_memory(bench: Bench, rows: int) -> None:
    """One full save of ``rows`` in a child process; see ``memory_child``."""
    work = Path(tempfile.mkdtemp(dir=bench.root, prefix="memory-"))
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(rows), str(work)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr[-2000:]}")
    got = json.loads(proc.stdout.splitlines()[-1])
    ratio = got["peak_delta"] / got["frame"]
    goal = Goal(2.0)
    ROWS.append(
        Row(
            what=MEMORY,
            rows=rows,
            ours=f"+{got['peak_delta'] / 2**20:.1f} MB peak RSS",
            reference=f"{got['frame'] / 2**20:.1f} MB frame",
            ratio=f"{ratio:.2f}x",
            goal=str(goal),
            met="met" if goal.met(ratio) else "not met",
            order=len(ROWS),
        )
    )
    progress(f"  peak RSS delta {got['peak_delta'] / 2**20:.1f} MB ({ratio:.2f}x the frame)")


def proc_status_kb(field_name: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field_name}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no {field_name} in /proc/self/status")
    return int(match.group(1))


def memory_child(rows: int, work: Path) -> None:
    """Save a ``rows``-row frame into a new table; print the peak RSS growth during the save.

    Imports and lazy initialisation are paid by a warm-up save first; the kernel's peak
    (VmHWM) is reset just before the save (``/proc/self/clear_refs``), so the frame's own
    construction does not count. Dolt's processes are not included: this is Python's memory.
    """
    frame = make_frame(rows)
    dataset(init_repo(work / "warm")).save(frame.head(100))
    ds = dataset(init_repo(work / "repo"))
    gc.collect()
    baseline = proc_status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    ds.save(frame)
    peak = proc_status_kb("VmHWM")
    print(
        json.dumps(
            {
                "frame": int(frame.memory_usage(deep=True).sum()),
                "peak_delta": (peak - baseline) * 1024,
            }
        )
    )


def bench_small(bench: Bench) -> None:
    frame = make_frame(SMALL_ROWS)

    def dolt_save(work: Path) -> Action:
        ds = dataset(init_repo(work / "repo"))
        return lambda: ds.save(frame)

    def parquet_save(work: Path) -> Action:
        ds = ParquetDataset(filepath=str(work / "small.parquet"))
        return lambda: ds.save(frame)

    def dolt_load(work: Path) -> Action:
        return dataset(bench.copy("small", frame, work)).load

    def parquet_load(work: Path) -> Action:
        ds = ParquetDataset(filepath=str(work / "small.parquet"))
        ds.save(frame)
        return ds.load

    repeats = max(5, bench.repeats)
    saves = measure(
        bench.root,
        {"dolt save": Trial(dolt_save, equal_check(frame)), "parquet save": Trial(parquet_save)},
        repeats,
    )
    add_row(SMALL_SAVE, SMALL_ROWS, saves["dolt save"], saves["parquet save"])
    loads = measure(
        bench.root, {"dolt load": Trial(dolt_load), "parquet load": Trial(parquet_load)}, repeats
    )
    add_row(SMALL_LOAD, SMALL_ROWS, loads["dolt load"], loads["parquet load"])


# -- kedro run -----------------------------------------------------------------------------


def bench_run(bench: Bench) -> None:
    projects = bench.root / "projects"
    dolt_project = kedro_projects.build(projects / "dolt", "dolt")
    parquet_project = kedro_projects.build(projects / "parquet", "parquet")
    warehouse = dolt_project / "data" / "warehouse"
    kedro_projects.run(dolt_project)  # untimed: the warehouse a re-run starts from
    after_one_run = Path(shutil.copytree(warehouse, projects / "warehouse-after-one-run"))

    def fresh_dolt(work: Path) -> Action:
        shutil.rmtree(warehouse, ignore_errors=True)
        return lambda: kedro_projects.run(dolt_project)

    def again_dolt(work: Path) -> Action:
        shutil.rmtree(warehouse, ignore_errors=True)
        shutil.copytree(after_one_run, warehouse)
        return lambda: kedro_projects.run(dolt_project)

    def parquet(work: Path) -> Action:
        for path in (parquet_project / "data").glob("*.parquet"):
            path.unlink()
        return lambda: kedro_projects.run(parquet_project)

    result = measure(
        bench.root,
        {
            "kedro run, Dolt, fresh repo": Trial(fresh_dolt),
            "kedro run, Parquet": Trial(parquet),
            "kedro run, Dolt, again": Trial(again_dolt),
        },
        bench.repeats,
    )
    reference = result["kedro run, Parquet"]
    add_row(
        RUN_FRESH, kedro_projects.ROWS, result["kedro run, Dolt, fresh repo"], reference, Goal(2.0)
    )
    add_row(RUN_AGAIN, kedro_projects.ROWS, result["kedro run, Dolt, again"], reference, Goal(2.0))


# -- dolt process starts -------------------------------------------------------------------


def procs_operations(root: Path, wrapper: Path) -> list[tuple[str, Callable[[], Action]]]:
    """(name, setup): each setup builds a fresh repository and returns the counted action.

    The last one is a control: a bare ``dolt status`` without DOLT_DISABLE_EVENT_FLUSH, to
    show that a leftover ``send-metrics`` process would be seen."""
    frame = make_frame(PROCS_ROWS)
    changed = modified(frame)
    counter = iter(range(10**6))

    def fresh(name: str) -> Path:
        return root / f"{name}-{next(counter)}"

    def new_table() -> Action:
        ds = dataset(init_repo(fresh("new")))
        return lambda: ds.save(frame)

    def resave(new: pd.DataFrame) -> Callable[[], Action]:
        def setup() -> Action:
            ds = dataset(kedro_dolt_repo(fresh("resave"), frame))
            return lambda: ds.save(new)

        return setup

    def load() -> Action:
        return dataset(kedro_dolt_repo(fresh("load"), frame)).load

    def merge_save() -> Action:
        repo = kedro_dolt_repo(fresh("merge"), frame)
        ds = dataset(repo, branch={"strategy": "merge", "from": "main", "into": "main"})
        return lambda: ds.save(changed)

    def remote(kind: str) -> Action:
        where = fresh("remote")
        url = f"file://{where / 'remote'}"
        ds = dataset(init_repo(where / "repo"), remote={"name": "origin", "url": url})
        ds.save(frame)
        return (lambda: ds.save(changed)) if kind == "save" else ds.load

    def control() -> Action:
        repo = init_repo(fresh("control"))
        return lambda: subprocess.run([str(wrapper), "status"], cwd=repo, capture_output=True)

    return [
        ("save into a new table", new_table),
        ("re-save, 1% of rows modified", resave(changed)),
        ("re-save, unchanged", resave(frame.copy(deep=True))),
        ("load", load),
        ("MergeBranch save (from main into main), 1% modified", merge_save),
        ("Remote save (file:// remote, pull + push), 1% modified", lambda: remote("save")),
        ("Remote load (pull)", lambda: remote("load")),
        ("control: bare `dolt status` without DOLT_DISABLE_EVENT_FLUSH", control),
    ]


def bench_procs(bench: Bench) -> list[Starts]:
    """Count dolt starts per operation through a wrapper named by KEDRO_DOLT_BINARY.

    Runs with Dolt metrics ENABLED in its DOLT_ROOT_PATH and without DOLT_DISABLE_EVENT_FLUSH
    in this process, so a dolt start that kedro-dolt does not protect leaves a
    ``send-metrics`` process behind and is counted (elsewhere metrics are disabled).
    """
    root = bench.root / "procs"
    home = dolt_home(root / "dolt-home", metrics=True)
    log = root / "starts.log"
    wrapper = counting_wrapper(root / "dolt-counting", log, DOLT)
    results = []
    with environ(
        DOLT_ROOT_PATH=str(home), DOLT_DISABLE_EVENT_FLUSH=None, KEDRO_DOLT_BINARY=str(wrapper)
    ):
        for name, setup in procs_operations(root, wrapper):
            action = setup()
            results.append(count_starts(name, action, log, home))
            progress(f"  {name}: {len(results[-1].commands)} starts")
    return results


# -- main ----------------------------------------------------------------------------------


CODE_ENV = "KEDRO_DOLT_BENCH_CODE"  # set (to the code's label) in the measuring process


def git(*cmd: str) -> str:
    """Read-only git in the project (no optional index refresh)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    proc = subprocess.run(["git", *cmd], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout.rstrip()


def snapshot(code: str, dest: Path) -> str:
    """Copy kedro_dolt as of ``code`` (``worktree`` or a git revision) into ``dest``;
    return its label. Edits to the project during the run do not change what is measured."""
    sha = git("rev-parse", "--short", "HEAD" if code == "worktree" else code)
    if code != "worktree":
        archive = subprocess.run(
            ["git", "archive", sha, "kedro_dolt"], cwd=REPO_ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return f"commit {sha}"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "kedro_dolt", dest / "kedro_dolt", ignore=ignore)
    changed = [line[3:] for line in git("status", "--porcelain", "--", "kedro_dolt").splitlines()]
    return f"commit {sha}" + (
        f" plus uncommitted changes to {', '.join(changed)}" if changed else ""
    )


def on_snapshot(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Re-run this script in a child that imports kedro_dolt from a snapshot of the code
    (``PYTHONPATH`` wins over the editable install; children and ``kedro run`` inherit it)."""
    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-code-") as tmp:
        label = snapshot(args.code, Path(tmp))
        path = os.pathsep.join(p for p in (tmp, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path, CODE_ENV: label}
        argv = sys.argv[1:] if argv is None else argv
        return subprocess.run([sys.executable, __file__, *argv], env=env, check=False).returncode


def header(args: argparse.Namespace) -> str:
    import kedro_dolt

    where = Path(kedro_dolt.__file__).parent.parent
    if os.environ.get(CODE_ENV) is None or where == REPO_ROOT:
        raise RuntimeError(f"kedro_dolt was imported from {where}, not from the snapshot")
    version = dolt(REPO_ROOT, "version").decode().splitlines()[0]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC at {os.environ[CODE_ENV]}; "
        f"{version}; pandas {pd.__version__}; {os.cpu_count()} cores, load average at "
        f"start {load}; medians of {args.repeats} runs (min-max), "
        f"{max(5, args.repeats)} for the 10-row rows."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(n) for n in SIZES),
        help="comma-separated row counts (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (default: 3)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections among {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--code",
        default="worktree",
        help="kedro_dolt to measure: the working tree (default) or a git revision; "
        "a snapshot is taken at the start",
    )
    parser.add_argument("--memory-child", nargs=2, metavar=("ROWS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(n.replace("_", "")) for n in args.sizes.split(",") if n]
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {','.join(SECTIONS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def run_sections(bench: Bench, args: argparse.Namespace) -> list[Starts]:
    per_size = [s for s in ("save", "load", "resave", "memory") if s in args.only]
    for rows in args.sizes if per_size else []:
        frame = make_frame(rows)
        for section in per_size:
            progress(f"{section}, {rows:,} rows")
            if section == "memory":
                bench_memory(bench, rows)
            else:
                {"save": bench_save, "load": bench_load, "resave": bench_resave}[section](
                    bench, frame
                )
        bench.drop_templates()
    if "small" in args.only:
        progress(f"small, {SMALL_ROWS} rows")
        bench_small(bench)
    if "run" in args.only:
        progress(f"kedro run, {kedro_projects.NODES} nodes, {kedro_projects.ROWS:,} rows")
        bench_run(bench)
    starts: list[Starts] = []
    if "procs" in args.only:
        progress("dolt process starts")
        starts = bench_procs(bench)
    return starts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(int(args.memory_child[0]), Path(args.memory_child[1]))
        return
    if CODE_ENV not in os.environ:
        sys.exit(on_snapshot(args, argv))
    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-") as tmp:
        root = Path(tmp)
        home = dolt_home(root / "dolt-home")
        os.environ.update(
            DOLT_ROOT_PATH=str(home),
            DOLT_DISABLE_EVENT_FLUSH="1",
            KEDRO_DISABLE_TELEMETRY="1",
            DO_NOT_TRACK="1",
            KEDRO_DOLT_CACHE_DIR=str(root / "load-cache"),
        )
        os.environ.pop("KEDRO_DOLT_BINARY", None)
        started = header(args)
        starts = run_sections(Bench(root=root, repeats=args.repeats), args)
    print(f"\n{started}\n")
    if ROWS:
        print(goals_table())
    if starts:
        print(f"\n{starts_table(starts, PROCS_ROWS)}")


if __name__ == "__main__":
    main()
