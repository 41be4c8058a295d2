"""A differential fuzzer of incremental runs: random sequences of changes to a small project
(tests/support/fuzz_project.py), an incremental run after each, and a check that every output
equals what a full run from scratch computes (a reference evaluator applies the current node
functions to the current raw inputs) and that no node executed twice or outside the pipeline.

Changes (``KINDS``): the code of a node or of the helper it calls, a comment, a module-level
constant, a closure value, a bound method's instance state, the order of a node's inputs,
params (nested too), a catalog option (a Dolt input's ``load_args.columns``, an output's, a CSV
input's ``sep``/``usecols``, a CSV output's ``sep``), the Dolt input edited, reverted or changed
on a branch and merged, the CSV input edited or reverted, an output edited or deleted by hand.

A mismatch is a wrong skip (the producing node was skipped), a wrong restore (its outputs were
restored from history) or a wrong result (it ran); "downstream" when an input of the node is
wrong already. Each is reported with the seed, the step, the changes so far, the node, its
decision, and expected vs got. A sequence stops at its first finding (what follows would
repeat it). Runs are in process (a KedroSession, the project's package imported anew); one
sequence also goes through real ``kedro run`` processes, which must decide alike.

Environment: ``KEDRO_DOLT_FUZZ_SEQUENCES`` (per engine; default 6), ``KEDRO_DOLT_FUZZ_STEPS``
(per sequence; default 5), ``KEDRO_DOLT_FUZZ_SEED`` (the first seed; replay a report with
``KEDRO_DOLT_FUZZ_SEED=<seed> KEDRO_DOLT_FUZZ_SEQUENCES=1``), ``KEDRO_DOLT_FUZZ_KINDS`` (a
comma list of change kinds to draw from; default all). ``make fuzz`` runs the long version
(bench/fuzz_incremental.py).
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fuzz_project import (
    DOLT_OUTPUTS,
    EDITABLE,
    INPUTS,
    PRODUCER,
    Knobs,
    Warehouse,
    actual,
    create_project,
    decisions,
    expected_bytes,
    forget_project,
    labels_text,
    normalised,
    raw_sql,
    reference,
    render,
    run_in_process,
    run_subprocess,
)

#: Values each knob takes (small domains, so that changes often go back to earlier values).
DOMAINS: dict[str, list[Any]] = {
    "prep_k": [0, 1, 2],
    "helper_k": [0, 1],
    "cosmetic": [0, 1, 2],
    "bonus": [0, 1, 2],
    "filter_t": [0, 4, 8],
    "scaler_k": [1, 2, 3],
    "swap": [False, True],
    "factor": [1, 2, 3],
    "offset": [0, 1],
    "digits": [1, 2, 3],
    "raw_columns": [None, ("id", "x"), ("id", "x", "y"), ("id", "x", "g")],
    "filtered_columns": [None, ("id", "v")],
    "labels_sep": [",", ";"],
    "labels_usecols": [None, (0,), (1,)],
    "summary_sep": [",", ";"],
}
#: Change kinds that edit the project's code, params or catalog: the knobs they move.
KNOB_KINDS = {
    "code_node": ["prep_k"],
    "code_helper": ["helper_k"],
    "code_cosmetic": ["cosmetic"],
    "module_constant": ["bonus"],
    "closure": ["filter_t"],
    "method_state": ["scaler_k"],
    "swap_inputs": ["swap"],
    "params_scalar": ["factor"],
    "params_nested": ["offset", "digits"],
    "catalog_dolt_load_columns": ["raw_columns"],
    "catalog_output_load_columns": ["filtered_columns"],
    "catalog_csv_load_args": ["labels_sep", "labels_usecols"],
    "catalog_csv_save_args": ["summary_sep"],
}
DATA_KINDS = [
    "dolt_input_edit",
    "dolt_input_revert",
    "dolt_input_merge",
    "csv_input_edit",
    "csv_input_revert",
    "output_edit",
    "output_drop",
    "csv_output_edit",
    "csv_output_delete",
]
KINDS = [*KNOB_KINDS, *DATA_KINDS]

Raw = dict[int, tuple[float, float, str]]
Labels = list[tuple[int, str, int]]


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def env_kinds() -> list[str]:
    wanted = [k.strip() for k in os.environ.get("KEDRO_DOLT_FUZZ_KINDS", "").split(",")]
    kinds = [k for k in wanted if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown KEDRO_DOLT_FUZZ_KINDS {unknown}; known: {KINDS}")
    return kinds or KINDS


@dataclass
class Finding:
    """One output that differs from the full run's, or a run that failed."""

    # wrong skip | wrong restore | wrong result (the node ran) | downstream <one of those>
    # (an input of the node is wrong already) | inconsistent | error (the run failed) |
    # harness error (applying a change failed)
    what: str
    seed: int
    engine: str
    step: int
    changes: list[list[str]]
    node: str = ""
    output: str = ""
    decision: str = ""
    expected: str = ""
    got: str = ""
    kinds: str = ""  # the KEDRO_DOLT_FUZZ_KINDS of the sequence, when not all

    def report(self) -> str:
        steps = "\n".join(
            f"    step {i}: {'; '.join(c) or 'initial full run'}"
            for i, c in enumerate(self.changes)
        )
        where = f"node {self.node!r} output {self.output!r}" if self.node else "the run"
        details = (
            f"  decision: {self.decision}\n  expected: {self.expected}\n" if self.decision else ""
        )
        return (
            f"{self.what.upper()} (seed {self.seed}, engine {self.engine}, step {self.step}): "
            f"{where}\n{details}  got:      {self.got}\n  changes:\n{steps}\n"
            f"  replay: KEDRO_DOLT_FUZZ_SEED={self.seed} KEDRO_DOLT_FUZZ_SEQUENCES=1"
            + (f" KEDRO_DOLT_FUZZ_KINDS={self.kinds}" if self.kinds else "")
        )


@dataclass
class Outcome:
    seed: int
    steps: int = 0  # runs checked, the initial one included
    findings: list[Finding] = field(default_factory=list)
    actions: list[dict[str, str]] = field(default_factory=list)  # per run: node -> action


class Sequence:
    """One random sequence: a project made from ``seed``, then changes and runs."""

    def __init__(
        self,
        seed: int,
        root: Path,
        warehouse: Warehouse,
        engine: str,
        kinds: list[str],
        run: Callable[[Path], str] = run_in_process,
    ) -> None:
        self.seed, self.root, self.warehouse, self.engine = seed, root, warehouse, engine
        self.kinds, self.run = kinds, run
        self.rng = random.Random(seed)
        rng = self.rng
        self.knobs = Knobs(**{name: rng.choice(values) for name, values in DOMAINS.items()})
        ids = rng.sample(range(1, 9), rng.randint(2, 5))
        self.raw: Raw = {i: self._raw_row() for i in ids}
        self.labels: Labels = [self._label(i) for i in range(1, rng.randint(2, 4))]
        self.raw_history: list[Raw] = [dict(self.raw)]
        self.labels_history: list[Labels] = [list(self.labels)]
        self.changes: list[list[str]] = [[]]
        self.project = root / "project"

    def _raw_row(self) -> tuple[float, float, str]:
        rng = self.rng
        return (rng.randint(0, 18) / 2, rng.choice([0.0, 0.5, 1.5]), rng.choice(["a", "b"]))

    def _label(self, i: int) -> tuple[int, str, int]:
        return (i, self.rng.choice(["p", "q", "r"]), self.rng.randint(1, 30))

    # -- the loop ----------------------------------------------------------------------------

    def play(self, steps: int) -> Outcome:
        outcome = Outcome(self.seed)
        ran_file = self.root / "ran.txt"
        os.environ["RAN_FILE"] = str(ran_file)
        create_project(self.project, self.warehouse, self.knobs, self.raw, self.labels)
        for step in range(steps + 1):
            if step:
                count = 2 if self.rng.random() < 0.25 else 1
                self.changes.append([])
                try:
                    for _ in range(count):
                        self.changes[-1].append(self.change(self.rng.choice(self.kinds)))
                except Exception as exc:  # the fuzzer's own fault: report it as such
                    outcome.findings.append(self._finding("harness error", step, got=repr(exc)))
                    break
            ran_file.unlink(missing_ok=True)
            try:
                run_id = self.run(self.project)
            except Exception as exc:
                outcome.findings.append(self._finding("error", step, got=repr(exc)[:2000]))
                break
            ran = ran_file.read_text().split() if ran_file.exists() else []
            outcome.steps += 1
            made = decisions(self.project, run_id)
            outcome.actions.append({n: d.split(":")[0] for n, d in made.items()})
            outcome.findings += self.check(step, made, ran)
            if outcome.findings:
                break
        return outcome

    def _finding(self, what: str, step: int, **details: str) -> Finding:
        changes = [list(c) for c in self.changes]
        kinds = "" if self.kinds == KINDS else ",".join(self.kinds)
        return Finding(what, self.seed, self.engine, step, changes, **details, kinds=kinds)

    def check(self, step: int, made: dict[str, str], ran: list[str]) -> list[Finding]:
        found = []
        runs = sorted(n for n, d in made.items() if d.startswith("run"))
        # (b) what executed is a subset of a full run's nodes, each once, and is what the
        # runner says it ran (the harness's own sanity).
        if (
            len(ran) != len(set(ran))
            or not set(ran) <= set(PRODUCER.values())
            or sorted(ran) != runs
        ):
            found.append(
                self._finding(
                    "inconsistent", step, decision=str(made), expected=str(runs), got=str(ran)
                )
            )
        expected = reference(self.project, self.warehouse, self.knobs)
        held = actual(self.project, self.warehouse)
        mismatches = {}
        for output in PRODUCER:
            mismatch = self._compare(output, expected[output], held[output])
            if mismatch is not None:
                mismatches[output] = mismatch
        for output, (want, got) in mismatches.items():
            node = PRODUCER[output]
            action = made.get(node, "none").split(":")[0]
            what = {"skip": "wrong skip", "restore": "wrong restore"}.get(action, "wrong result")
            if any(name in mismatches for name in INPUTS[node]):
                what = f"downstream {what}"  # an input is already wrong: not a root cause
            found.append(
                self._finding(
                    what,
                    step,
                    node=node,
                    output=output,
                    decision=made.get(node, "?"),
                    expected=want,
                    got=got,
                )
            )
        return found

    def _compare(self, output: str, frame: Any, held: Any) -> tuple[str, str] | None:
        if output == "summary":
            want = expected_bytes(self.project, self.knobs, frame, self.root / "expected.csv")
            if held == want:
                return None
            return repr(want.decode()), repr(held.decode() if isinstance(held, bytes) else held)
        if held is None:
            return _short(normalised(frame, DOLT_OUTPUTS[output])), "no table"
        assert not isinstance(held, bytes)
        key = DOLT_OUTPUTS[output]
        want_rows, got_rows = normalised(frame, key), normalised(held, key)
        if want_rows == got_rows:
            return None
        return _short(want_rows), _short(got_rows)

    # -- changes ---------------------------------------------------------------------------

    def change(self, kind: str) -> str:
        if kind in KNOB_KINDS:
            name = self.rng.choice(KNOB_KINDS[kind])
            was = getattr(self.knobs, name)
            now = self.rng.choice([v for v in DOMAINS[name] if v != was])
            self.knobs = dataclasses.replace(self.knobs, **{name: now})
            render(self.project, self.warehouse, self.knobs)
            return f"{kind}: {name} {was!r} -> {now!r}"
        return str(getattr(self, kind)())

    def _commit(self, *statements: str, message: str) -> None:
        self.warehouse.sql(*statements, f"CALL DOLT_COMMIT('-Am', '{message}', '--allow-empty')")

    def _set_raw(self, raw: Raw, message: str) -> None:
        self.raw = dict(raw)
        self._commit(*raw_sql(self.raw), message=message)
        self.raw_history.append(dict(self.raw))

    def dolt_input_edit(self) -> str:
        raw, rng = dict(self.raw), self.rng
        target = rng.choice(sorted(raw))
        op = rng.choice(
            ["update", "update", "insert", "delete"] if len(raw) > 2 else ["update", "insert"]
        )
        if op == "insert":
            target = rng.choice([i for i in range(1, 12) if i not in raw] or [99])
        if op == "delete":
            del raw[target]
        else:
            raw[target] = self._raw_row()
        self._set_raw(raw, f"edit raw ({op} {target})")
        return f"dolt_input_edit: {op} raw id {target}"

    def dolt_input_revert(self) -> str:
        earlier = [r for r in self.raw_history if r != self.raw]
        if not earlier:
            return self.dolt_input_edit()
        back = self.rng.randrange(len(earlier))
        self._set_raw(earlier[back], "revert raw")
        return f"dolt_input_revert: raw back to version {self.raw_history.index(earlier[back])}"

    def dolt_input_merge(self) -> str:
        a, b = self.rng.sample(sorted(self.raw), 2)
        ra, rb = self._raw_row(), self._raw_row()
        branch = f"feature{len(self.raw_history)}"  # a new name for every change of raw
        self.warehouse.sql(
            f"CALL DOLT_CHECKOUT('-b', '{branch}')",
            f"UPDATE raw SET x = {ra[0]}, y = {ra[1]}, g = '{ra[2]}' WHERE id = {a}",
            f"CALL DOLT_COMMIT('-am', 'on {branch}', '--allow-empty')",
            "CALL DOLT_CHECKOUT('main')",
            f"UPDATE raw SET x = {rb[0]}, y = {rb[1]}, g = '{rb[2]}' WHERE id = {b}",
            "CALL DOLT_COMMIT('-am', 'on main', '--allow-empty')",
            f"CALL DOLT_MERGE('{branch}')",
        )
        self.raw[a], self.raw[b] = ra, rb
        self.raw_history.append(dict(self.raw))
        return f"dolt_input_merge: raw id {a} changed on {branch}, id {b} on main, merged"

    def _set_labels(self, labels: Labels) -> None:
        self.labels = list(labels)
        (self.project / "data" / "labels.csv").write_text(labels_text(self.labels))
        self.labels_history.append(list(self.labels))

    def csv_input_edit(self) -> str:
        labels, rng = list(self.labels), self.rng
        op = rng.choice(["update", "append", "drop"] if len(labels) > 1 else ["update", "append"])
        at = rng.randrange(len(labels))
        if op == "update":
            labels[at] = self._label(labels[at][0])
        elif op == "append":
            labels.append(self._label(max(i for i, _, _ in labels) + 1))
        else:
            del labels[at]
        self._set_labels(labels)
        return f"csv_input_edit: {op} a row of labels.csv"

    def csv_input_revert(self) -> str:
        earlier = [r for r in self.labels_history if r != self.labels]
        if not earlier:
            return self.csv_input_edit()
        back = earlier[self.rng.randrange(len(earlier))]
        self._set_labels(back)
        return f"csv_input_revert: labels.csv back to version {self.labels_history.index(back)}"

    def output_edit(self) -> str:
        table = self.rng.choice(sorted(EDITABLE))
        column = EDITABLE[table]
        self._commit(f"UPDATE `{table}` SET `{column}` = `{column}` + 100", message="by hand")
        return f"output_edit: {table}.{column} += 100 by hand"

    def output_drop(self) -> str:
        table = self.rng.choice(sorted(DOLT_OUTPUTS))
        self._commit(f"DROP TABLE IF EXISTS `{table}`", message="dropped by hand")
        return f"output_drop: DROP TABLE {table}"

    def csv_output_edit(self) -> str:
        path = self.project / "data" / "summary.csv"
        path.write_text((path.read_text() if path.exists() else "") + "by,hand\n")
        return "csv_output_edit: a line appended to summary.csv"

    def csv_output_delete(self) -> str:
        (self.project / "data" / "summary.csv").unlink(missing_ok=True)
        return "csv_output_delete: summary.csv deleted"


def describe(findings: list[Finding]) -> str:
    """Root causes in full, then one line for the outputs that are wrong because of them."""
    roots = [f for f in findings if not f.what.startswith("downstream")]
    text = "\n\n".join(f.report() for f in roots)
    after = [f"{f.output} (seed {f.seed} step {f.step})" for f in findings if f not in roots]
    return text + (f"\n\nwrong downstream of those: {', '.join(after)}" if after else "")


def _short(rows: Any, limit: int = 400) -> str:
    text = str(rows)
    return text if len(text) <= limit else text[:limit] + "..."


def new_warehouse(engine: str, root: Path, server: Any) -> Warehouse:
    if engine == "server":
        return Warehouse(root / "unused", server, f"fz{uuid.uuid4().hex[:12]}")
    return Warehouse(root / "project" / "data" / "warehouse")


def drop(warehouse: Warehouse) -> None:
    if warehouse.server is not None:
        warehouse.server.execute(f"DROP DATABASE IF EXISTS `{warehouse.db}`")


def play(
    seed: int,
    engine: str,
    root: Path,
    server: Any = None,
    *,
    steps: int,
    kinds: list[str] | None = None,
    run: Callable[[Path], str] = run_in_process,
) -> Outcome:
    """One sequence from ``seed`` in a fresh project under ``root`` (a fresh database)."""
    root.mkdir(parents=True)
    warehouse = new_warehouse(engine, root, server)
    try:
        return Sequence(seed, root, warehouse, engine, kinds or KINDS, run).play(steps)
    finally:
        drop(warehouse)


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _own_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-process runs configure Kedro for the fuzz project: undone for the tests that
    share this worker."""
    import kedro.framework.project as kedro_project

    monkeypatch.setenv("RAN_FILE", os.devnull)
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = kedro_project.PACKAGE_NAME, kedro_project.pipelines._pipelines_module
    yield
    forget_project()
    kedro_project.PACKAGE_NAME = saved[0]
    kedro_project.pipelines.configure(saved[1])


@pytest.mark.parametrize("engine", ["cli", "server"])
def test_incremental_runs_equal_a_full_run(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("shared_server") if engine == "server" else None
    first = env_int("KEDRO_DOLT_FUZZ_SEED", 1000)
    count, steps = env_int("KEDRO_DOLT_FUZZ_SEQUENCES", 6), env_int("KEDRO_DOLT_FUZZ_STEPS", 5)
    findings: list[Finding] = []
    for seed in range(first, first + count):
        outcome = play(seed, engine, tmp_path / f"s{seed}", server, steps=steps, kinds=env_kinds())
        findings += outcome.findings
    assert not findings, f"{len(findings)} finding(s) in {count} sequences:\n\n{describe(findings)}"


#: The faithfulness sequence: code changes (a fresh import must see them), a revert that
#: restores from history, and what is checked without Dolt (files, params).
FAITHFUL_KINDS = [
    "code_node",
    "code_helper",
    "params_scalar",
    "dolt_input_edit",
    "dolt_input_revert",
    "csv_input_revert",
    "output_drop",
]


def test_the_in_process_harness_decides_as_kedro_run(tmp_path: Path) -> None:
    """The same sequence (seed 7: skips, runs and a restore) through real ``kedro run``
    processes: the same checks pass and every run decides every node as the in-process runs
    do."""
    kinds = FAITHFUL_KINDS
    real = play(7, "cli", tmp_path / "real", steps=3, kinds=kinds, run=run_subprocess)
    here = play(7, "cli", tmp_path / "here", steps=3, kinds=kinds)
    assert real.actions == here.actions
    findings = real.findings + here.findings
    assert not findings, describe(findings)
