"""Time moving a DataFrame into Dolt and back through each intermediate format.

Prints a Markdown table (seconds, lower is better) and whether each option round-trips the
frame exactly (dtypes, NULL vs empty string). Usage::

    python bench/bench_formats.py [--rows 10000 100000 1000000] [--repeat 3]

Needs ``dolt`` on PATH (``make dolt``); runs in a temporary DOLT_ROOT_PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from kedro_datasets.pandas import CSVDataset, ParquetDataset

from kedro_dolt.engine import DoltCLIEngine
from kedro_dolt.engine.codec import decode_table
from kedro_dolt.engine.schema import TableSchema

TABLE = "bench"


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    names = np.array(["alpha", "beta", "", "gamma delta", "ünïcode", "tab\there"], dtype=object)
    name = pd.Series(names[rng.integers(0, len(names), rows)], dtype="str")
    name[rng.random(rows) < 0.05] = None
    score = pd.array(rng.integers(-(10**9), 10**9, rows), dtype="Int64")
    score[rng.random(rows) < 0.1] = pd.NA
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "amount": rng.normal(100, 30, rows),
            "flag": rng.random(rows) < 0.5,
            "name": name,
            "created": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 10**12, rows), unit="us"),
            "score": score,
        }
    ).astype({"created": "datetime64[ns]"})


def dolt(repo: Path, *args: str, stdin: bytes | None = None, cwd: Path | None = None) -> bytes:
    proc = subprocess.run(
        ["dolt", *args], cwd=cwd or repo, input=stdin, capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.decode() or proc.stdout.decode())
    return proc.stdout


def fresh_repo(root: Path, name: str, frame: pd.DataFrame) -> tuple[Path, TableSchema]:
    repo = root / name
    repo.mkdir()
    dolt(repo, "init")
    schema = TableSchema.from_frame(frame, ["id"])
    dolt(repo, "sql", stdin=(schema.ddl(TABLE) + ";").encode())
    dolt(repo, "add", "-A")
    dolt(repo, "commit", "-m", "schema")
    return repo, schema


def commit(repo: Path) -> None:
    dolt(repo, "add", TABLE)
    dolt(repo, "commit", "--skip-empty", "-m", "bench save")


# -- save options: frame -> committed table ------------------------------------------------


def save_load_data(repo: Path, frame: pd.DataFrame, schema: TableSchema) -> None:
    DoltCLIEngine(repo).write_table(TABLE, frame, schema=schema, branch=None, message="bench")


def save_import(fmt: str) -> Callable[[Path, pd.DataFrame, TableSchema], None]:
    def save(repo: Path, frame: pd.DataFrame, schema: TableSchema) -> None:
        path = repo / f"rows.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "parquet":
            frame.to_parquet(
                path, index=False, coerce_timestamps="us", allow_truncated_timestamps=True
            )
        else:
            frame.to_json(path, orient="records", lines=True, date_format="iso")
        dolt(repo, "table", "import", "-r", TABLE, str(path))
        commit(repo)

    return save


# -- load options: committed table -> frame -------------------------------------------------


def load_sql_parquet(repo: Path, schema: TableSchema) -> pd.DataFrame:
    return DoltCLIEngine(repo).read_table(TABLE, ref="HEAD").frame


def load_sql_csv(repo: Path, schema: TableSchema) -> pd.DataFrame:
    out = dolt(repo, "sql", "-r", "csv", "-q", f"SELECT * FROM {TABLE} ORDER BY id")
    return pd.read_csv(BytesIO(out))


def load_sql_json(repo: Path, schema: TableSchema) -> pd.DataFrame:
    out = dolt(repo, "sql", "-r", "json", "-q", f"SELECT * FROM {TABLE} ORDER BY id")
    return pd.DataFrame(json.loads(out)["rows"])


def load_export(fmt: str) -> Callable[[Path, TableSchema], pd.DataFrame]:
    def load(repo: Path, schema: TableSchema) -> pd.DataFrame:
        path = repo / f"out.{fmt}"
        path.unlink(missing_ok=True)
        dolt(repo, "table", "export", TABLE, str(path))
        if fmt == "parquet":
            return decode_table(pq.read_table(path), schema)
        return pd.read_csv(path)

    return load


def exact(expected: pd.DataFrame, got: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(expected, got.reset_index(drop=True))
    except (AssertionError, KeyError, ValueError, TypeError):
        return False
    return True


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (1 for 1M rows)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kedro-dolt-bench-") as tmp:
        root = Path(tmp)
        os.environ["DOLT_ROOT_PATH"] = str(root / "dolt-root")
        (root / "dolt-root").mkdir()
        for key, value in [
            ("user.name", "bench"),
            ("user.email", "bench@example.com"),
            ("metrics.disabled", "true"),
            ("versioncheck.disabled", "true"),
        ]:
            dolt(root, "config", "--global", "--add", key, value)
        version = dolt(root, "version").decode().splitlines()[0]

        saves: dict[str, Callable[[Path, pd.DataFrame, TableSchema], None]] = {
            "TSV + LOAD DATA in one `dolt sql` (kedro-dolt)": save_load_data,
            "CSV + `dolt table import -r`": save_import("csv"),
            "Parquet + `dolt table import -r`": save_import("parquet"),
            "JSONL + `dolt table import -r`": save_import("jsonl"),
        }
        loads: dict[str, Callable[[Path, TableSchema], pd.DataFrame]] = {
            "`dolt sql -r parquet` (kedro-dolt)": load_sql_parquet,
            "`dolt sql -r csv`": load_sql_csv,
            "`dolt sql -r json`": load_sql_json,
            "`dolt table export` Parquet": load_export("parquet"),
            "`dolt table export` CSV": load_export("csv"),
        }
        rows_out: dict[str, dict[int, str]] = {}
        fidelity: dict[str, bool] = {}
        for n in args.rows:
            frame = make_frame(n)
            changed = frame.assign(amount=frame.amount + 1)
            repeat = 1 if n >= 1_000_000 else args.repeat
            print(f"# {n} rows", file=sys.stderr)
            for i, (label, save) in enumerate(saves.items()):
                repo, schema = fresh_repo(root, f"s-{n}-{i}", frame)
                counter = iter(range(10**6))

                def run(save=save, repo=repo, schema=schema, counter=counter) -> None:
                    # Alternate content so every run is a real commit.
                    k = next(counter)
                    save(repo, frame if k % 2 == 0 else changed, schema)

                seconds, _ = timed(run, repeat)
                rows_out.setdefault(f"save: {label}", {})[n] = f"{seconds:.2f}"
            repo, schema = fresh_repo(root, f"l-{n}", frame)
            save_load_data(repo, frame, schema)
            for label, load in loads.items():
                seconds, got = timed(lambda load=load: load(repo, schema), repeat)
                rows_out.setdefault(f"load: {label}", {})[n] = f"{seconds:.2f}"
                fidelity[f"load: {label}"] = exact(frame, got)  # type: ignore[arg-type]
            # Raw Dolt on a prepared file, no pandas: the floor for import/export.
            csv_path = root / f"prepared-{n}.csv"
            frame.to_csv(csv_path, index=False)
            raw = root / f"raw-{n}"
            raw.mkdir()
            dolt(raw, "init")
            seconds, _ = timed(
                lambda: dolt(
                    raw, "table", "import", "-c", "-f", "--pk", "id", TABLE, str(csv_path)
                ),
                repeat,
            )
            rows_out.setdefault("raw: `dolt table import -c` of a CSV file", {})[n] = (
                f"{seconds:.2f}"
            )
            seconds, _ = timed(
                lambda: dolt(raw, "table", "export", "-f", TABLE, str(root / "raw-out.csv")), repeat
            )
            rows_out.setdefault("raw: `dolt table export` to a CSV file", {})[n] = f"{seconds:.2f}"
            for label, cls, ext in [
                ("CSVDataset", CSVDataset, "csv"),
                ("ParquetDataset", ParquetDataset, "parquet"),
            ]:
                ds = cls(filepath=str(root / f"kd-{n}.{ext}"))
                seconds, _ = timed(lambda ds=ds: ds.save(frame), repeat)
                rows_out.setdefault(f"save: kedro-datasets pandas.{label}", {})[n] = (
                    f"{seconds:.2f}"
                )
                seconds, got = timed(ds.load, repeat)
                rows_out.setdefault(f"load: kedro-datasets pandas.{label}", {})[n] = (
                    f"{seconds:.2f}"
                )
                fidelity[f"load: kedro-datasets pandas.{label}"] = exact(frame, got)  # type: ignore[arg-type]
            # A save is exact when the dataset's own load gives the frame back.
            for i, (label, save) in enumerate(saves.items()):
                repo2, schema2 = fresh_repo(root, f"f-{n}-{i}", frame)
                try:
                    save(repo2, frame, schema2)
                    fidelity[f"save: {label}"] = exact(frame, load_sql_parquet(repo2, schema2))
                except RuntimeError:
                    fidelity[f"save: {label}"] = False
                if n > 10_000:
                    break  # fidelity does not depend on size: check all options at the smallest

        print(
            f"\n{version}; {os.cpu_count()} cores; "
            f"median of {args.repeat} runs (1 run at 1M rows)\n"
        )
        sizes = args.rows
        print(
            "| option | " + " | ".join(f"{n:,} rows (s)" for n in sizes) + " | exact round trip |"
        )
        print("|---|" + "---:|" * len(sizes) + ":---:|")
        for label, cells in rows_out.items():
            ok = fidelity.get(label)
            mark = "" if ok is None else ("yes" if ok else "no")
            print(f"| {label} | " + " | ".join(cells.get(n, "") for n in sizes) + f" | {mark} |")


if __name__ == "__main__":
    main()
