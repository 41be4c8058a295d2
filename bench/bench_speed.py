"""The benchmark of issue 18: a Kedro run on Dolt next to the same run on Parquet.

Prints one Markdown table (medians of N alternating runs with min-max, the ratio, the goal,
met or not). Usage::

    python bench/bench_speed.py [--repeats 3] [--only cached,save,chain,tutorial]

Needs ``dolt`` on PATH (``make dolt``). Measures the working tree's kedro_dolt. Everything
happens in a temporary directory with its own DOLT_ROOT_PATH and load cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import kedro_projects
import numpy as np
import pandas as pd
from bench_goals import (
    ROWS,
    Action,
    Bench,
    Goal,
    Trial,
    add_row,
    dolt,
    init_repo,
    make_frame,
    measure,
    progress,
)
from kedro_datasets.pandas import ParquetDataset

SECTIONS = ("cached", "save", "chain", "tutorial")
CACHED_LOAD = "load of a version already in the load cache (in a run) vs `pandas.ParquetDataset`"
UNCACHED_LOAD = "load of a version not in the cache (in a run) vs `pandas.ParquetDataset`"
CLI_LOAD = "load outside a run (`dolt` process, no cache) vs `pandas.ParquetDataset`"
SAVE_13 = "save of a 15.5k x 13 frame into a new table vs raw `dolt table import -c` + add + commit"
SAVE_13_RUN = "the same save in a run (the run's `dolt sql-server`) vs the same raw import"
CHAIN = "`kedro run`, 10 chained nodes (1k rows), fresh repository vs Parquet"
CHAIN_AGAIN = "`kedro run`, 10 chained nodes, again with nothing changed vs Parquet"
TUTORIAL = "`kedro run`, tutorial-size project, cold (no warehouse, no cache) vs Parquet"
TUTORIAL_AGAIN = "`kedro run`, tutorial-size project, again with nothing changed vs Parquet"
ORDER = [
    CACHED_LOAD,
    UNCACHED_LOAD,
    CLI_LOAD,
    SAVE_13,
    SAVE_13_RUN,
    CHAIN,
    CHAIN_AGAIN,
    TUTORIAL,
    TUTORIAL_AGAIN,
]


def cache_dir() -> Path:
    return Path(os.environ["KEDRO_DOLT_CACHE_DIR"])


def clear_cache() -> None:
    shutil.rmtree(cache_dir(), ignore_errors=True)


# -- loads ---------------------------------------------------------------------------------


def bench_cached(bench: Bench, rows: int) -> None:
    from kedro_dolt import DoltTableDataset
    from kedro_dolt.engine.run_server import RunServers

    frame = make_frame(rows)
    repo = init_repo(bench.root / f"cached-{rows}")
    DoltTableDataset(database=str(repo), table="t", save_args={"primary_key": "id"}).save(frame)
    parquet = bench.root / f"cached-{rows}.parquet"
    ParquetDataset(filepath=str(parquet)).save(frame)
    servers = RunServers.open()  # as the Kedro hook does for a run
    try:

        def dataset() -> DoltTableDataset:
            return DoltTableDataset(database=str(repo), table="t")

        def cached(work: Path) -> Action:
            ds = dataset()
            pd.testing.assert_frame_equal(ds.load(), frame)  # served, and now in the cache
            return ds.load

        def uncached(work: Path) -> Action:
            ds = dataset()
            ds.exists()  # the server is up; the cache is not
            clear_cache()
            return ds.load

        def reference(work: Path) -> Action:
            return ParquetDataset(filepath=str(parquet)).load

        result = measure(
            bench.root,
            {"cached": Trial(cached), "uncached": Trial(uncached), "parquet": Trial(reference)},
            bench.repeats if rows > 1000 else max(9, bench.repeats),
        )
    finally:
        servers.close()

    def outside(work: Path) -> Action:
        return dataset().load

    cli = measure(
        bench.root,
        {
            "cli": Trial(outside),
            "parquet": Trial(lambda work: ParquetDataset(filepath=str(parquet)).load),
        },
        bench.repeats if rows > 1000 else max(9, bench.repeats),
    )
    goal = Goal(3.0) if rows <= 1000 else Goal(1.5) if rows >= 1_000_000 else None
    add_row(CACHED_LOAD, rows, result["cached"], result["parquet"], goal)
    add_row(UNCACHED_LOAD, rows, result["uncached"], result["parquet"])
    add_row(CLI_LOAD, rows, cli["cli"], cli["parquet"])


# -- a medium save -----------------------------------------------------------------------------


def frame_13(rows: int = 15_500) -> pd.DataFrame:
    """A tutorial-like table: 13 columns, strings, floats, integers, booleans."""
    rng = np.random.default_rng(0)

    def pick(values: list[str]) -> pd.Series:
        return pd.Series(
            np.array(values, dtype=object)[rng.integers(0, len(values), rows)], dtype="str"
        )

    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "shuttle_location": pick(["Sao Tome and Principe", "Wallis and Futuna", "Niue"]),
            "shuttle_type": pick(["Type V5", "Type F5", "Type V2"]),
            "engine_type": pick(["Quantum", "Plasma", "Nuclear"]),
            "engine_vendor": pick(["ThetaBase Services", "Banks, Wood and Phillips"]),
            "engines": rng.integers(1, 5, rows).astype(float),
            "passenger_capacity": rng.integers(1, 10, rows),
            "cancellation_policy": pick(["strict", "moderate", "flexible"]),
            "crew": rng.integers(1, 8, rows).astype(float),
            "d_check_complete": rng.random(rows) < 0.5,
            "moon_clearance_complete": rng.random(rows) < 0.5,
            "price": rng.random(rows) * 5000,
            "company_id": rng.integers(0, 40_000, rows),
        }
    )


def bench_save(bench: Bench) -> None:
    from kedro_dolt import DoltTableDataset
    from kedro_dolt.engine.run_server import RunServers

    frame = frame_13()
    csv = bench.root / "frame13.csv"
    frame.to_csv(csv, index=False)

    def ours(work: Path) -> Action:
        ds = DoltTableDataset(database=str(init_repo(work / "repo")), table="bench")
        return lambda: ds.save(frame)

    def raw(work: Path) -> Action:
        repo = init_repo(work / "repo")
        shutil.copy(csv, repo / "frame.csv")

        def run() -> None:
            dolt(repo, "table", "import", "-c", "--pk", "id", "bench", "frame.csv")
            dolt(repo, "add", "bench")
            dolt(repo, "commit", "-m", "import")

        return run

    def in_run(work: Path) -> Action:
        ds = DoltTableDataset(database=str(init_repo(work / "repo")), table="bench")
        ds.exists()  # the run's server of this repository is up, as after a run's first node
        return lambda: ds.save(frame)

    def check(work: Path) -> None:
        loaded = DoltTableDataset(database=str(work / "repo"), table="bench").load()
        pd.testing.assert_frame_equal(loaded, frame)

    result = measure(
        bench.root, {"ours": Trial(ours, check), "raw": Trial(raw)}, max(5, bench.repeats)
    )
    add_row(SAVE_13, len(frame), result["ours"], result["raw"], Goal(1.5))
    with RunServers.open():
        served = measure(bench.root, {"in run": Trial(in_run, check)}, max(5, bench.repeats))
    add_row(SAVE_13_RUN, len(frame), served["in run"], result["raw"], Goal(1.5))


# -- kedro run -------------------------------------------------------------------------------


def bench_projects(
    bench: Bench,
    dolt_project: Path,
    parquet_project: Path,
    rows: int,
    labels: tuple[str, str],
    goals: tuple[Goal, Goal],
) -> None:
    warehouse = dolt_project / "data" / "warehouse"
    kedro_projects.run(dolt_project)  # untimed: the warehouse (and cache) a re-run starts from
    after_one_run = Path(
        shutil.copytree(warehouse, bench.root / f"after-{dolt_project.parent.name}")
    )

    def fresh(work: Path) -> Action:
        shutil.rmtree(warehouse, ignore_errors=True)
        clear_cache()
        return lambda: kedro_projects.run(dolt_project)

    def again(work: Path) -> Action:
        shutil.rmtree(warehouse, ignore_errors=True)
        shutil.copytree(after_one_run, warehouse)
        return lambda: kedro_projects.run(dolt_project)

    def parquet(work: Path) -> Action:
        for path in (parquet_project / "data").glob("*.parquet"):
            path.unlink()
        return lambda: kedro_projects.run(parquet_project)

    result = measure(
        bench.root,
        {"dolt fresh": Trial(fresh), "parquet": Trial(parquet), "dolt again": Trial(again)},
        bench.repeats,
    )
    add_row(labels[0], rows, result["dolt fresh"], result["parquet"], goals[0])
    add_row(labels[1], rows, result["dolt again"], result["parquet"], goals[1])


def bench_chain(bench: Bench) -> None:
    root = bench.root / "chain"
    bench_projects(
        bench,
        kedro_projects.build(root / "dolt", "dolt"),
        kedro_projects.build(root / "parquet", "parquet"),
        kedro_projects.ROWS,
        (CHAIN, CHAIN_AGAIN),
        (Goal(1.5), Goal(1.5)),
    )


def bench_tutorial(bench: Bench) -> None:
    root = bench.root / "tutorial"
    inputs = root / "inputs"
    kedro_projects.tutorial_inputs(inputs)
    bench_projects(
        bench,
        kedro_projects.build_tutorial(root / "dolt", "dolt", inputs),
        kedro_projects.build_tutorial(root / "parquet", "parquet", inputs),
        kedro_projects.TUTORIAL_ROWS,
        (TUTORIAL, TUTORIAL_AGAIN),
        (Goal(1.2), Goal(1.0)),
    )


# -- main --------------------------------------------------------------------------------------


def table() -> str:
    lines = [
        "| what | rows | kedro-dolt s, median (min-max) | reference s, median (min-max) "
        "| ratio | goal | met? |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for row in sorted(ROWS, key=lambda r: (ORDER.index(r.what), r.rows, r.order)):
        lines.append(
            f"| {row.what} | {row.rows:,} | {row.ours} | {row.reference} | {row.ratio} "
            f"| {row.goal} | {row.met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--cached-sizes", default="10,1000000")
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-speed-") as tmp:
        root = Path(tmp)
        from bench_goals import isolated_environment

        version, load = isolated_environment(root)
        bench = Bench(root=root, repeats=args.repeats)
        if "cached" in only:
            for rows in [int(n) for n in args.cached_sizes.split(",")]:
                progress(f"cached loads, {rows:,} rows")
                bench_cached(bench, rows)
        if "save" in only:
            progress("15.5k x 13 save")
            bench_save(bench)
        if "chain" in only:
            progress("kedro run, 10 chained nodes")
            bench_chain(bench)
        if "tutorial" in only:
            progress("kedro run, tutorial-size project")
            bench_tutorial(bench)
    print(
        f"\n{version}; pandas {pd.__version__}; {os.cpu_count()} cores, load average at "
        f"start {load}; medians of {args.repeats} alternating runs (min-max)\n"
    )
    print(table())


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
