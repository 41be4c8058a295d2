"""The long run of the incremental-run fuzzer (``make fuzz``): many random sequences of changes
per engine, each checked against a full run from scratch (see
tests/scenarios/test_incremental_fuzz.py, whose sequences these are).

Prints, per engine, how many sequences and checked runs there were and how many wrong skips,
wrong restores, wrong results and failed runs were found, then, per kind of finding and change
kind of the step that showed it, the shortest example in full (seed, steps, expected vs got).
Exits 1 when anything was found. Usage::

    python bench/fuzz_incremental.py [--sequences 500] [--steps 4] [--engines cli,server]
                                     [--seed N] [--jobs 2] [--kinds closure,swap_inputs]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests package
# Quiet runs: Kedro reads this when kedro.framework.project is first imported.
_LOGGING = Path(tempfile.mkdtemp(prefix="kedro-dolt-fuzz-log-")) / "logging.yml"
_LOGGING.write_text("version: 1\ndisable_existing_loggers: false\nroot: {level: ERROR}\n")
os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(_LOGGING))

from tests.scenarios.test_incremental_fuzz import KINDS, Finding, Outcome, play  # noqa: E402
from tests.support.dolt_server import DoltServer  # noqa: E402

_server: DoltServer | None = None  # the server engine's server, inherited by forked workers
_root = Path()


def dolt_home(root: Path) -> None:
    """A private DOLT_ROOT_PATH with an identity, no metrics; a private load cache."""
    home = root / "dolt-root"
    home.mkdir()
    os.environ.update(
        DOLT_ROOT_PATH=str(home),
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        DOLT_DISABLE_EVENT_FLUSH="1",
        KEDRO_DOLT_CACHE_DIR=str(root / "load-cache"),
    )
    for key, value in [
        ("user.name", "Kedro Dolt Fuzz"),
        ("user.email", "fuzz@kedro-dolt.invalid"),
        ("metrics.disabled", "true"),
        ("versioncheck.disabled", "true"),
    ]:
        subprocess.run(
            ["dolt", "config", "--global", "--add", key, value], check=True, capture_output=True
        )


def one(job: tuple[int, str, int, list[str]]) -> Outcome:
    seed, engine, steps, kinds = job
    where = _root / f"{engine}-{seed}"
    try:
        return play(seed, engine, where, _server, steps=steps, kinds=kinds)
    except Exception as exc:  # the harness itself failed: report it, go on
        return Outcome(seed, 0, [Finding("error", seed, engine, 0, [], got=f"harness: {exc!r}")])
    finally:
        shutil.rmtree(where, ignore_errors=True)


def signature(finding: Finding) -> str:
    kinds = (
        sorted({c.split(":")[0] for c in finding.changes[finding.step]}) if finding.changes else []
    )
    return f"{finding.what} after {'+'.join(kinds) or 'the first run'}"


def report(engine: str, outcomes: list[Outcome], seconds: float) -> int:
    findings = [f for o in outcomes for f in o.findings]
    roots = [f for f in findings if not f.what.startswith("downstream")]
    counts = Counter(f.what for f in roots)
    bad = {o.seed for o in outcomes if any(not f.what.startswith("downstream") for f in o.findings)}
    print(
        f"\n== engine {engine}: {len(outcomes)} sequences, {sum(o.steps for o in outcomes)} "
        f"runs checked, {seconds:.0f} s"
    )
    for what in (
        "wrong skip",
        "wrong restore",
        "wrong result",
        "error",
        "inconsistent",
        "harness error",
    ):
        print(f"   {what}s: {counts.get(what, 0)}")
    print(
        f"   sequences with a finding: {len(bad)}; outputs wrong downstream of those: "
        f"{len(findings) - len(roots)}"
    )
    per_kind: Counter[str] = Counter()  # a step of two changes counts for both
    for finding in roots:
        if finding.changes and finding.step < len(finding.changes):
            per_kind.update({c.split(":")[0] for c in finding.changes[finding.step]})
    print(
        "   by change kind of the step: " + ", ".join(f"{k} {n}" for k, n in per_kind.most_common())
    )
    shortest: dict[str, Finding] = {}
    for finding in roots:
        key = signature(finding)
        if key not in shortest or finding.step < shortest[key].step:
            shortest[key] = finding
    by_kind = Counter(signature(f) for f in roots)
    for key, finding in sorted(shortest.items()):
        print(f"\n-- {key}: {by_kind[key]} time(s); the shortest:\n{finding.report()}")
    return len(roots)


def main() -> int:
    global _server, _root
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=500, help="per engine")
    parser.add_argument("--steps", type=int, default=4, help="changes per sequence")
    parser.add_argument("--engines", default="cli,server")
    parser.add_argument("--seed", type=int, default=None, help="the first seed (random)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--kinds", default="", help=f"change kinds (default all: {KINDS})")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k] or KINDS
    first = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(
        f"fuzz: seeds {first}..{first + args.sequences - 1}, {args.steps} steps, "
        f"kinds {','.join(kinds)}",
        flush=True,
    )
    _root = Path(tempfile.mkdtemp(prefix="kedro-dolt-fuzz-"))
    found = 0
    try:
        dolt_home(_root)
        for engine in args.engines.split(","):
            if engine == "server" and _server is None:
                _server = DoltServer.start(_root / "server-data", local_infile=True)
            jobs = [(s, engine, args.steps, kinds) for s in range(first, first + args.sequences)]
            start = time.perf_counter()
            with multiprocessing.get_context("fork").Pool(args.jobs, maxtasksperchild=50) as pool:
                outcomes = []
                for done, outcome in enumerate(pool.imap_unordered(one, jobs), 1):
                    outcomes.append(outcome)
                    if done % 25 == 0:
                        print(f"   {engine}: {done}/{len(jobs)} sequences", file=sys.stderr)
            found += report(
                engine, sorted(outcomes, key=lambda o: o.seed), time.perf_counter() - start
            )
    finally:
        if _server is not None:
            _server.stop()
        shutil.rmtree(_root, ignore_errors=True)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
