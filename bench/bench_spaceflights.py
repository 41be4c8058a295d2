"""The benchmark of issue 24: incremental runs of a spaceflights-size project.

The project of ``bench/spaceflights.py`` (Kedro's spaceflights shape at the tutorial size: 9
nodes, three Dolt tables, an in-memory split, a versioned pickled model, metrics and three
versioned plots) is rerun with ``kedro run --runner kedro_dolt.IncrementalRunner`` after no
change, after a change of ``params:model_options`` and after an edit of one raw CSV file, and
compared with a full rerun of the same project on ``pandas.ParquetDataset`` with Kedro's
default runner, in the same state. Each scenario prints which nodes ran (from the run
manifest, ``data/kedro_dolt/runs/<run id>.json``) against the nodes downstream of the change.
The last row is Kedro's own start with one trivial node: the floor of any run. Medians of N
runs, Dolt and Parquet alternating. Usage::

    python bench/bench_spaceflights.py [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import kedro_projects
import spaceflights
from bench_incremental import kedro_run

INCREMENTAL = ("--runner", "kedro_dolt.IncrementalRunner")
NODES = list(spaceflights.NODE_INPUTS)
CHANGED_CSV = "companies"


@dataclass
class Scenario:
    name: str
    state: str  # which saved data/ directory both projects start from
    test_size: float
    dolt_args: tuple[str, ...]
    expected: list[str] | None  # the nodes downstream of the change; None: not incremental
    goal: float | None = None  # the time ratio to meet


@dataclass
class Result:
    scenario: Scenario
    ours: list[float]
    parquet: list[float]
    ran: list[list[str]]  # per repeat, the nodes that ran
    cpu: dict[str, list[float]]  # "ours" / "parquet": user + sys seconds of the run's processes


def edit_csv(path: Path) -> None:
    """Change ``company_rating`` of every 100th company (1% of the rows) by one point."""
    lines = path.read_text().splitlines()
    for i in range(1, len(lines), 100):
        fields = lines[i].split(",")
        rating = int(fields[1].rstrip("%"))
        fields[1] = f"{rating - 1 if rating == 100 else rating + 1}%"
        lines[i] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


def restore(project: Path, state: Path, test_size: float) -> None:
    """The project's data/ as in ``state``, with its files' mtimes (copy2, as after a real
    run). data/ itself stays: replacing it would change the project root's mtime, which
    kedro-dolt's cache of installed distributions keys on (``python -m kedro`` puts the
    project root on sys.path), and every run would rescan them."""
    data = project / "data"
    for child in data.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copytree(state, data, dirs_exist_ok=True)
    params = project / "conf" / "base" / "parameters.yml"
    params.write_text(spaceflights.parameters(test_size))


def manifests(project: Path) -> set[Path]:
    return set((project / "data" / "kedro_dolt" / "runs").glob("*.json"))


def nodes_run(project: Path, before: set[Path], log: str) -> list[str]:
    """The nodes the run executed, from its manifest, checked against Kedro's log."""
    (manifest,) = manifests(project) - before
    decisions = json.loads(manifest.read_text())["nodes"]
    ran = [d["node"] for d in decisions if d["action"] != "skip"]
    logged = {
        line.split("Running node: ", 1)[1].split(":")[0]
        for line in log.splitlines()
        if "Running node: " in line
    }
    if logged != {d["node"] for d in decisions if d["action"] == "run"}:
        raise RuntimeError(f"manifest {manifest} and log disagree: {decisions} vs {logged}")
    for d in decisions:
        print(f"    {d['node']}: {d['action']} ({d['reason']})", file=sys.stderr)
    return sorted(ran, key=NODES.index)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(project: Path, *args: str) -> tuple[float, float, str]:
    """Wall clock and CPU seconds (user + sys of the run and the processes it waited for: its
    `dolt` processes and servers; less sensitive to other work on the machine) and the log."""
    cpu, start = cpu_seconds(), time.perf_counter()
    log = kedro_run(project, *args)
    return time.perf_counter() - start, cpu_seconds() - cpu, log


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def prepare(root: Path, rows: int, keys: bool) -> tuple[Path, Path, dict[str, tuple[Path, Path]]]:
    """Both projects after one full run, and the saved data/ states each scenario starts from:
    (Dolt state, Parquet state) by name."""
    inputs = root / "inputs"
    kedro_projects.tutorial_inputs(inputs, rows)
    dolt = spaceflights.build_spaceflights(root / "dolt", "dolt", inputs, keys=keys)
    parquet = spaceflights.build_spaceflights(root / "parquet", "parquet", inputs)
    kedro_run(dolt, *INCREMENTAL)  # the first run: no memo, every node runs
    kedro_run(parquet)
    saved: dict[str, dict[str, Path]] = {}
    for project in (dolt, parquet):
        full = Path(shutil.copytree(project / "data", root / "states" / "full" / project.name))
        changed = Path(shutil.copytree(full, root / "states" / "changed" / project.name))
        edit_csv(changed / "01_raw" / f"{CHANGED_CSV}.csv")
        saved[project.name] = {"full": full, "changed": changed}
    states = {name: (saved["dolt"][name], saved["parquet"][name]) for name in ("full", "changed")}
    return dolt, parquet, states


def run_benchmark(root: Path, repeats: int, rows: int, keys: bool) -> list[Result]:
    dolt, parquet, states = prepare(root, rows, keys)
    scenarios = [
        Scenario("rerun, nothing changed", "full", 0.2, INCREMENTAL, [], 0.5),
        Scenario(
            "`params:model_options` changed (test_size 0.2 -> 0.25)",
            "full",
            0.25,
            INCREMENTAL,
            spaceflights.downstream("params:model_options"),
        ),
        Scenario(
            f"raw `{CHANGED_CSV}.csv` edited (1% of rows)",
            "changed",
            0.2,
            INCREMENTAL,
            spaceflights.downstream(CHANGED_CSV),
        ),
        Scenario(
            "Kedro's start, one trivial node (`kedro run --pipeline empty`, the floor)",
            "full",
            0.2,
            ("--pipeline", "empty"),
            None,
        ),
    ]
    results = []
    for scenario in scenarios:
        result = Result(scenario, [], [], [], {"ours": [], "parquet": []})
        dolt_state, parquet_state = states[scenario.state]
        for i in range(repeats):
            print(f"{scenario.name}, repeat {i + 1}:", file=sys.stderr)
            restore(dolt, dolt_state, scenario.test_size)
            before = manifests(dolt)
            seconds, cpu, log = timed(dolt, *scenario.dolt_args)
            result.ours.append(seconds)
            result.cpu["ours"].append(cpu)
            if scenario.expected is not None:
                result.ran.append(nodes_run(dolt, before, log))
            restore(parquet, parquet_state, scenario.test_size)
            seconds, cpu, _ = timed(parquet)
            result.parquet.append(seconds)
            result.cpu["parquet"].append(cpu)
            print(
                f"  kedro-dolt {result.ours[-1]:.2f} s (CPU {result.cpu['ours'][-1]:.2f} s), "
                f"Parquet {seconds:.2f} s (CPU {cpu:.2f} s)",
                file=sys.stderr,
            )
        results.append(result)
    return results


def spread(values: list[float]) -> str:
    return f"{median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def verdict(result: Result) -> tuple[str, str, bool]:
    """What ran, the goal, and whether it is met."""
    scenario, ratio = result.scenario, median(result.ours) / median(result.parquet)
    if scenario.expected is None:
        return "-- (default runner)", "--", True
    runs = {tuple(r) for r in result.ran}
    ran = " / ".join(", ".join(r) or "none" for r in sorted(runs))
    skipped = len(NODES) - max(len(r) for r in result.ran)
    ran = f"{ran} ({skipped} of {len(NODES)} skipped)"
    expected = ", ".join(scenario.expected) or "none"
    goal = f"ran: {expected}" + (" or fewer" if scenario.expected else "")
    met = all(set(r) <= set(scenario.expected) for r in result.ran)
    if scenario.goal is not None:
        goal += f"; <= {scenario.goal}x"
        met = met and ratio <= scenario.goal
    return ran, goal, met


def report(results: list[Result], header: str) -> None:
    print(f"\n{header}\n")
    print(
        "| scenario | nodes run | kedro-dolt s, median (min-max) "
        "| Parquet full rerun s, median (min-max) | ratio | goal | met? |"
    )
    print("|---|---|---:|---:|---:|---|---|")
    for result in results:
        ran, goal, met = verdict(result)
        ratio = median(result.ours) / median(result.parquet)
        print(
            f"| {result.scenario.name} | {ran} | {spread(result.ours)} "
            f"| {spread(result.parquet)} | {ratio:.2f}x | {goal} "
            f"| {'' if goal == '--' else 'met' if met else 'not met'} |"
        )
    print("\nCPU seconds (user + sys of `kedro run` and its `dolt` processes), medians:\n")
    print("| scenario | kedro-dolt CPU s | Parquet full rerun CPU s | ratio |")
    print("|---|---:|---:|---:|")
    for result in results:
        ours, parquet = median(result.cpu["ours"]), median(result.cpu["parquet"])
        print(f"| {result.scenario.name} | {ours:.2f} | {parquet:.2f} | {ours / parquet:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=kedro_projects.TUTORIAL_ROWS)
    parser.add_argument("--keyless", action="store_true", help="Dolt tables without a primary key")
    parser.add_argument(
        "--quick", action="store_true", help="one repeat of a 10k-row project (a smoke test)"
    )
    args = parser.parse_args()
    repeats, rows = (1, 10_000) if args.quick else (args.repeats, args.rows)
    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-spaceflights-") as tmp:
        root = Path(tmp)
        from bench_goals import isolated_environment

        version, load = isolated_environment(root)
        results = run_benchmark(root, repeats, rows, not args.keyless)
    header = (
        f"{version}; {os.cpu_count()} cores, load average at start {load} (assumes a quiet "
        f"machine); {rows:,} rows per raw table; Dolt tables "
        f"{'keyless' if args.keyless else 'keyed'}; medians of {repeats} alternating runs"
    )
    report(results, header)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
