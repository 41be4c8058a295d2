"""The server engine's benchmark (issue 10): kedro-dolt on a ``dolt sql-server`` next to the
CLI engine on a local repository.

Prints Markdown tables: a 1M-row full save into a new table and a full load on both engines
(goal: the server no slower than the CLI), and the latency of a 1k-row save on the server
(goal: <= 20 ms, no process start), as medians of N alternating runs with min-max. Usage::

    python bench/bench_server.py [--rows 1000000] [--repeats 3] [--small 25]

Needs ``dolt`` on PATH (``make dolt``). Everything happens in a temporary directory with its
own DOLT_ROOT_PATH; the server runs on 127.0.0.1 with ``local_infile`` on (the fast bulk
path) and a second one without it (batched INSERTs). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import kedro_projects
from bench.bench_goals import KEY, dolt_home, environ, init_repo, make_frame
from kedro_dolt import DoltTableDataset
from tests.support.dolt_server import DoltServer


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def summary(values: list[float], unit: float = 1.0) -> str:
    scaled = [v * unit for v in values]
    return f"{statistics.median(scaled):.3g} ({min(scaled):.3g}-{max(scaled):.3g})"


def server_dataset(server: DoltServer, database: str) -> DoltTableDataset:
    return DoltTableDataset(
        database=database,
        table="bench",
        credentials={"con": server.url()},
        save_args={"primary_key": KEY},
    )


def bench_bulk(root: Path, servers: dict[str, DoltServer], rows: int, repeats: int) -> str:
    frame = make_frame(rows)
    saves: dict[str, list[float]] = {"cli": [], **{name: [] for name in servers}}
    loads: dict[str, list[float]] = {"cli": [], **{name: [] for name in servers}}
    for trial in range(repeats):
        repo = init_repo(root / f"cli-{trial}")
        local = DoltTableDataset(database=str(repo), table="bench", save_args={"primary_key": KEY})
        progress(f"  {rows} rows, trial {trial + 1}: CLI")
        saves["cli"].append(timed(lambda d=local: d.save(frame)))  # type: ignore[misc]
        loads["cli"].append(timed(local.load))
        for name, server in servers.items():
            database = f"b{uuid.uuid4().hex[:10]}"
            server.execute(f"CREATE DATABASE {database}")
            remote = server_dataset(server, database)
            progress(f"  {rows} rows, trial {trial + 1}: {name}")
            saves[name].append(timed(lambda d=remote: d.save(frame)))  # type: ignore[misc]
            loads[name].append(timed(remote.load))
            assert (
                remote.load().equals(frame)
                or pd.testing.assert_frame_equal(remote.load(), frame) is None
            )
    lines = [
        f"### {rows:,} rows: full save into a new table and full load (seconds)",
        "",
        "| engine | save | save vs CLI | load | load vs CLI | goal |",
        "|---|---|---|---|---|---|",
    ]
    cli_save, cli_load = statistics.median(saves["cli"]), statistics.median(loads["cli"])
    for name in saves:
        save_ratio = statistics.median(saves[name]) / cli_save
        load_ratio = statistics.median(loads[name]) / cli_load
        goal = "" if name == "cli" else ("met" if max(save_ratio, load_ratio) <= 1.0 else "not met")
        lines.append(
            f"| {name} | {summary(saves[name])} | {save_ratio:.2f}x | {summary(loads[name])} | "
            f"{load_ratio:.2f}x | {goal} |"
        )
    return "\n".join(lines)


def bench_small(root: Path, server: DoltServer, count: int) -> str:
    """1k-row saves, each of new values (a full change), then unchanged ones; and loads."""
    database = f"s{uuid.uuid4().hex[:10]}"
    remote = server_dataset(server, database)
    local = DoltTableDataset(
        database=str(root / "small-cli"), table="bench", save_args={"primary_key": KEY}
    )
    results: dict[str, dict[str, list[float]]] = {}
    for name, data in (("server", remote), ("cli", local)):
        data.save(make_frame(1000, seed=0))  # creates the database and table: not timed
        frames = [make_frame(1000, seed=s) for s in range(1, count)]
        changed = [timed(lambda f=f: data.save(f)) for f in frames]
        same = make_frame(1000, seed=count - 1)
        unchanged = [timed(lambda: data.save(same)) for _ in range(count)]
        loads = [timed(data.load) for _ in range(count)]
        results[name] = {"changed": changed, "unchanged": unchanged, "load": loads}
    lines = [
        f"### 1,000 rows: one save or load (milliseconds, {count} runs each)",
        "",
        "| operation | server | CLI | goal (server) |",
        "|---|---|---|---|",
    ]
    for what in ("changed", "unchanged", "load"):
        server_ms = statistics.median(results["server"][what]) * 1000
        goal = ("met" if server_ms <= 20 else "not met") if what != "load" else ""
        lines.append(
            f"| {what} {'save' if what != 'load' else ''} | "
            f"{summary(results['server'][what], 1000)} | {summary(results['cli'][what], 1000)} "
            f"| {'<= 20 ms: ' + goal if goal else ''} |"
        )
    return "\n".join(lines)


def bench_run(root: Path, server: DoltServer, repeats: int) -> str:
    """``kedro run`` of bench_goals' 10-node project with every dataset on the server (a
    fresh database per run), next to the same project on Parquet."""
    projects = root / "projects"
    dolt_project = kedro_projects.build(projects / "server", "dolt")
    parquet_project = kedro_projects.build(projects / "parquet", "parquet")
    catalog = dolt_project / "conf" / "base" / "catalog.yml"
    template = catalog.read_text()
    (dolt_project / "conf" / "local" / "credentials.yml").write_text(
        f"dolt_server:\n  con: {server.url()}\n"
    )
    on_server, on_parquet = [], []
    for trial in range(repeats + 1):  # the first pair warms the caches: not counted
        database = f"r{uuid.uuid4().hex[:10]}"
        catalog.write_text(
            template.replace(
                "database: data/warehouse", f"database: {database}\n  credentials: dolt_server"
            )
        )
        for path in (parquet_project / "data").glob("*.parquet"):
            path.unlink()
        progress(f"  kedro run, trial {trial}")
        server_s = timed(lambda: kedro_projects.run(dolt_project))
        parquet_s = timed(lambda: kedro_projects.run(parquet_project))
        if trial:
            on_server.append(server_s)
            on_parquet.append(parquet_s)
    ratio = statistics.median(on_server) / statistics.median(on_parquet)
    return "\n".join(
        [
            f"### `kedro run`, 10 chained nodes of {kedro_projects.ROWS:,} rows (seconds)",
            "",
            "| datasets | `kedro run` | vs Parquet |",
            "|---|---|---|",
            f"| kedro-dolt on the server (fresh database) | {summary(on_server)} | {ratio:.2f}x |",
            f"| kedro-datasets `pandas.ParquetDataset` | {summary(on_parquet)} | 1.00x |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small", type=int, default=25, help="runs of the 1k-row operations")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-server-") as tmp:
        root = Path(tmp)
        home = dolt_home(root / "dolt-home")
        with (
            environ(DOLT_ROOT_PATH=str(home), DOLT_DISABLE_EVENT_FLUSH="1"),
            DoltServer.start(root / "server-local-infile", local_infile=True) as fast,
            DoltServer.start(root / "server-stock") as stock,
        ):
            servers = {"server (local_infile on)": fast, "server (stock: INSERTs)": stock}
            progress("1k-row operations")
            small = bench_small(root, fast, args.small)
            progress("kedro run")
            run = bench_run(root, fast, args.repeats)
            progress("bulk save and load")
            bulk = bench_bulk(root, servers, args.rows, args.repeats)
    print(bulk)
    print()
    print(small)
    print()
    print(run)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
