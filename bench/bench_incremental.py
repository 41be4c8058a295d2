"""The benchmark of issue 17: incremental runs of a 20-node pipeline (4 branches of 5).

Each node does ~0.2 s of deterministic CPU work on a 10k-row table. Scenarios, each timed with
``kedro run --runner kedro_dolt.IncrementalRunner`` and compared with (a) the same project run
fresh on ``pandas.ParquetDataset`` and (b) its ideal: a plain ``kedro run --nodes <exactly the
nodes that must run>`` on the same Dolt project state (one trivial node when none must).
Medians of N alternating runs. Also shows that Kedro's ``--only-missing-outputs`` leaves a
stale output after an input change, and this runner does not. Usage::

    python bench/bench_incremental.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import kedro
from kedro_projects import PYPROJECT  # the same minimal project file as bench_speed's

BRANCHES, DEPTH, ROWS, WORK = 4, 5, 10_000, 2_000

NODES = """
import numpy as np
import pandas as pd


def work(frame):
    # ~0.2 s of deterministic CPU work, then a small deterministic change
    x = frame["x"].to_numpy()
    y = x.copy()
    for _ in range({work}):
        y = np.sort(np.sin(y) + x)
    return frame.assign(x=frame["x"] * 1.01 + y[:1].sum() * 0)


def step_b0_3(frame):
    return work(frame)


def noop():
    return 0
"""

PIPELINE = """
from kedro.pipeline import Pipeline, node

from {package}.nodes import noop, step_b0_3, work


def register_pipelines():
    nodes = []
    for b in range({branches}):
        for i in range(1, {depth} + 1):
            func = step_b0_3 if (b, i) == (0, 3) else work
            nodes.append(node(func, f"t{{b}}_{{i - 1}}", f"t{{b}}_{{i}}", name=f"b{{b}}_{{i}}"))
    # Kedro refuses an empty pipeline: "nothing to run" is one trivial in-memory node.
    return {{"__default__": Pipeline(nodes), "empty": Pipeline([node(noop, None, "nothing")])}}
"""


def entry(name: str, kind: str) -> str:
    if kind == "dolt":
        return (
            f"{name}:\n  type: kedro_dolt.DoltTableDataset\n  database: data/warehouse\n"
            f"  table: {name}\n  save_args: {{primary_key: id}}\n"
        )
    return f"{name}:\n  type: pandas.ParquetDataset\n  filepath: data/{name}.parquet\n"


def source(b: int, shift: float = 0.0) -> str:
    """CSV text of source table ``t{b}_0``."""
    lines = ["id,x"] + [f"{i},{(i * 7 + b) % 1000 / 10 + shift}" for i in range(ROWS)]
    return "\n".join(lines) + "\n"


def build(root: Path, kind: str) -> Path:
    package = f"inc_{kind}"
    src = root / "src" / package
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, kedro_version=kedro.__version__)
    )
    for conf in ("base", "local"):
        (root / "conf" / conf).mkdir(parents=True)
    names = [f"t{b}_{i}" for b in range(BRANCHES) for i in range(DEPTH + 1)]
    (root / "conf" / "base" / "catalog.yml").write_text("".join(entry(n, kind) for n in names))
    (root / "conf" / "base" / "parameters.yml").write_text("{}\n")
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(NODES.format(work=WORK))
    (src / "pipeline_registry.py").write_text(
        PIPELINE.format(package=package, branches=BRANCHES, depth=DEPTH)
    )
    data = root / "data"
    data.mkdir()
    if kind == "parquet":
        import pandas as pd

        for b in range(BRANCHES):
            csv = data / f"s{b}.csv"
            csv.write_text(source(b))
            pd.read_csv(csv).to_parquet(data / f"t{b}_0.parquet")
    else:
        repo = data / "warehouse"
        repo.mkdir()
        dolt(repo, "init")
        for b in range(BRANCHES):
            write_source(repo, b)
        dolt(repo, "add", "-A")
        dolt(repo, "commit", "-m", "sources")
    return root


def write_source(repo: Path, b: int, shift: float = 0.0) -> None:
    csv = repo.parent / f"s{b}.csv"
    csv.write_text(source(b, shift))
    exists = f"t{b}_0" in dolt(repo, "ls")
    if exists:
        dolt(repo, "table", "import", "-r", f"t{b}_0", str(csv))
    else:
        dolt(repo, "table", "import", "-c", "--pk", "id", f"t{b}_0", str(csv))


def dolt(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["dolt", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def kedro_run(project: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        env={**os.environ, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kedro run {args} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


INCREMENTAL = ("--runner", "kedro_dolt.IncrementalRunner")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-incremental-") as tmp:
        root = Path(tmp)
        from bench_goals import isolated_environment

        isolated_environment(root)
        run_benchmark(root, args.repeats)


def run_benchmark(root: Path, repeats: int) -> None:
    project = build(root / "dolt", "dolt")
    parquet = build(root / "parquet", "parquet")
    repo = project / "data" / "warehouse"
    nodes_py = next((project / "src").glob("*/nodes.py"))
    code = nodes_py.read_text()
    sources = Path(shutil.copytree(repo, root / "state-sources"))
    kedro_run(project, *INCREMENTAL)
    after_full = Path(shutil.copytree(repo, root / "state-full"))
    write_source(repo, 0, shift=1.0)
    dolt(repo, "commit", "-am", "change t0_0")
    changed = Path(shutil.copytree(repo, root / "state-changed"))
    kedro_run(project, *INCREMENTAL)
    write_source(repo, 0)
    dolt(repo, "commit", "-am", "revert t0_0")
    reverted = Path(shutil.copytree(repo, root / "state-reverted"))

    branch0 = ",".join(f"b0_{i}" for i in range(1, DEPTH + 1))
    from_3 = ",".join(f"b0_{i}" for i in range(3, DEPTH + 1))
    comment = code.replace("def work(frame):", "def work(frame):  # a comment\n    # more")
    edited = code.replace(
        "def step_b0_3(frame):\n    return work(frame)",
        "def step_b0_3(frame):\n    return work(frame).assign(x=lambda f: f['x'] + 1)",
    )
    scenarios: list[tuple[str, Path, str, tuple[str, ...]]] = [
        ("fresh run", sources, code, ()),
        ("rerun, nothing changed", after_full, code, ("--pipeline", "empty")),
        ("one source table changed", changed, code, ("--nodes", branch0)),
        ("that change reverted (restore)", reverted, code, ("--nodes", branch0)),
        ("comment-only edit", after_full, comment, ("--pipeline", "empty")),
        ("real code edit in one node", after_full, edited, ("--nodes", from_3)),
    ]
    results = []
    parquet_times = []
    for name, state, source_code, ideal_args in scenarios:
        ours, ideal = [], []
        for _ in range(repeats):
            for which in ("ours", "ideal"):
                shutil.rmtree(repo)
                shutil.copytree(state, repo)
                nodes_py.write_text(source_code)
                args = INCREMENTAL if which == "ours" else ideal_args
                (ours if which == "ours" else ideal).append(
                    timed(lambda args=args: kedro_run(project, *args))
                )
            if len(parquet_times) < repeats:
                for path in (parquet / "data").glob("t?_[1-9].parquet"):
                    path.unlink()
                parquet_times.append(timed(lambda: kedro_run(parquet)))
        results.append((name, median(ours), median(ideal)))
        print(f"  {name}: ours {median(ours):.2f} s, ideal {median(ideal):.2f} s", file=sys.stderr)
    nodes_py.write_text(code)
    fresh_parquet = median(parquet_times)
    print(
        f"\nDolt {dolt(root, 'version').splitlines()[0]}; {os.cpu_count()} cores; "
        f"medians of {repeats} alternating runs; fresh Parquet run {fresh_parquet:.2f} s\n"
    )
    print("| scenario | incremental s | ideal s | vs ideal | vs fresh Parquet | goal | met? |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, ours, ideal in results:
        limit = ideal * 1.15 + 0.3
        goal, met = f"<= 1.15 x ideal + 0.3 s ({limit:.2f} s)", ours <= limit
        if name == "rerun, nothing changed":
            goal += "; <= 0.25x fresh Parquet"
            met = met and ours <= 0.25 * fresh_parquet
        print(
            f"| {name} | {ours:.2f} | {ideal:.2f} | {ours / ideal:.2f}x "
            f"| {ours / fresh_parquet:.2f}x | {goal} | {'met' if met else 'not met'} |"
        )
    stale_check(project, repo, after_full)


def stale_check(project: Path, repo: Path, after_full: Path) -> None:
    """After one source change: what `--only-missing-outputs` and this runner leave."""

    def last_output() -> str:
        return dolt(repo, "sql", "-r", "csv", "-q", "SELECT SUM(x) FROM t0_5")

    report = []
    for label, args in (
        ("kedro run --only-missing-outputs", ("--only-missing-outputs",)),
        ("kedro run --runner kedro_dolt.IncrementalRunner", INCREMENTAL),
    ):
        shutil.rmtree(repo)
        shutil.copytree(after_full, repo)
        before = last_output()
        write_source(repo, 0, shift=1.0)
        dolt(repo, "commit", "-am", "change t0_0")
        log = kedro_run(project, *args)
        ran = log.count("Completed node:")
        stale = last_output() == before
        report.append(f"| `{label}` | {ran} | {'yes' if stale else 'no'} |")
    print("\nAfter source table t0_0 changed (t0_5 is computed from it):\n")
    print("| command | nodes run | t0_5 left stale? |\n|---|---:|---|")
    print("\n".join(report))


if __name__ == "__main__":
    main()
