"""Branch strategies: where a save commits and what a load reads by default.

The dataset delegates every branch decision to one of these objects:

* :class:`AppendBranch` commits each save onto a branch;
* :class:`NewBranch` creates a branch from a start point on first use, then commits onto it;
* :class:`MergeBranch` writes on top of a commit on a temporary branch and merges that into a
  target branch (a real three-way merge), resolving conflicts as configured.

A catalog may give a plain string (``branch: main``), a mapping (``branch: {strategy: new,
name: exp-1, start_point: main}``) or an object; :func:`branch_strategy` turns each into a
strategy. The YAML and Python forms are equivalent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

import pandas as pd

from ..engine import (
    CommitMessage,
    CommitResult,
    DoltEngine,
    Lineage,
    MergeResult,
    TableSchema,
    scratch,
)
from ..errors import DoltError
from ..naming import validate_branch, validate_ref

logger = logging.getLogger(__name__)

ON_CONFLICT = ("fail", "ours", "theirs")


@dataclass(frozen=True)
class SaveRequest:
    """One save as the dataset hands it to a strategy: the rows, where they go in the table,
    and the commit message; the strategy picks the branch."""

    table: str
    frame: pd.DataFrame
    schema: TableSchema
    message: CommitMessage
    lineage: Lineage = None
    mode: str = "overwrite"

    def write(self, engine: DoltEngine, branch: str | None) -> CommitResult:
        return engine.write_table(
            self.table,
            self.frame,
            schema=self.schema,
            branch=branch,
            message=self.message,
            lineage=self.lineage,
            mode=self.mode,
        )


@dataclass(frozen=True)
class SaveOutcome(CommitResult):
    """Where a save's data now lives (a :class:`CommitResult` of the branch it landed on),
    and the merge that brought it there, if any."""

    merge: MergeResult | None = None

    @classmethod
    def of(cls, result: CommitResult) -> SaveOutcome:
        return cls(**{f.name: getattr(result, f.name) for f in fields(result)})


class BranchStrategy(Protocol):
    """Decides the branch a save commits to and the ref a load reads by default."""

    kind: ClassVar[str]

    @property
    def target_branch(self) -> str | None:
        """The branch saves land on (``None``: the checked-out branch); pulled and pushed."""

    @property
    def initial_branch(self) -> str | None:
        """The branch a repository this strategy's first save creates starts with."""

    def load_location(self, engine: DoltEngine) -> tuple[str, str | None]:
        """``(ref, branch)``: what a load reads, and the branch ``HEAD`` resolves against."""

    def save(self, engine: DoltEngine, request: SaveRequest) -> SaveOutcome: ...

    def on_run_branch(self, engine: DoltEngine, run_branch: str) -> tuple[BranchStrategy, str]:
        """This strategy redirected to a run-level branch, and the branch it stands for.
        Reads only: a branch the redirect needs is made by the first save."""

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AppendBranch:
    """Commit each save onto ``branch`` (default: the repository's checked-out branch).

    YAML: ``branch: main`` or ``branch: {strategy: append, name: main}``. Use it for the
    ordinary case: one line of history per table.
    """

    branch: str | None = None
    kind: ClassVar[str] = "append"

    def __post_init__(self) -> None:
        if self.branch is not None:
            validate_branch(self.branch)

    @property
    def target_branch(self) -> str | None:
        return self.branch

    @property
    def initial_branch(self) -> str | None:
        return self.branch

    def load_location(self, engine: DoltEngine) -> tuple[str, str | None]:
        return self.branch or "HEAD", self.branch

    def save(self, engine: DoltEngine, request: SaveRequest) -> SaveOutcome:
        return SaveOutcome.of(request.write(engine, self.branch))

    def on_run_branch(self, engine: DoltEngine, run_branch: str) -> tuple[BranchStrategy, str]:
        base = self.branch or (engine.active_branch() if engine.exists() else "main")
        return NewBranch(run_branch, start_point=base), base

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.kind, "name": self.branch}


@dataclass(frozen=True)
class NewBranch:
    """Create ``branch`` from ``start_point`` when it is missing, then commit onto it.

    Loads read ``branch``, or ``start_point`` while the branch does not exist yet. YAML:
    ``branch: {strategy: new, name: exp-1, start_point: main}``. Use it for experiments
    whose outputs should not touch the main line.
    """

    branch: str
    start_point: str = "main"
    kind: ClassVar[str] = "new"

    def __post_init__(self) -> None:
        validate_branch(self.branch)
        validate_ref(self.start_point, key="start_point")

    @property
    def target_branch(self) -> str | None:
        return self.branch

    @property
    def initial_branch(self) -> str | None:
        return _branch_name_or_none(self.start_point)

    def load_location(self, engine: DoltEngine) -> tuple[str, str | None]:
        heads = engine.state().heads if engine.exists() else {}
        if self.branch in heads:
            return self.branch, self.branch
        return self.start_point, self.start_point if self.start_point in heads else None

    def save(self, engine: DoltEngine, request: SaveRequest) -> SaveOutcome:
        created = not engine.branch_exists(self.branch)
        if created:
            engine.create_branch(self.branch, self.start_point, exist_ok=True)
        try:
            result = request.write(engine, self.branch)
        except DoltError:
            if created:  # a failed first save leaves no new branch behind
                with contextlib.suppress(DoltError):
                    start = engine.resolve(self.start_point)
                    if engine.resolve(self.branch) == start:
                        engine.delete_branch(self.branch)
            raise
        return SaveOutcome.of(result)

    def on_run_branch(self, engine: DoltEngine, run_branch: str) -> tuple[BranchStrategy, str]:
        exists = engine.exists() and engine.branch_exists(self.branch)
        return NewBranch(run_branch, self.branch if exists else self.start_point), self.branch

    def describe(self) -> dict[str, Any]:
        return {"strategy": self.kind, "name": self.branch, "start_point": self.start_point}


@dataclass(frozen=True)
class MergeBranch:
    """Write on top of ``branch_from`` on a temporary branch, commit, merge into ``merge_to``.

    A real three-way merge: if ``merge_to`` moved since ``branch_from``, both its changes and
    the saved ones survive. ``on_conflict``: ``fail`` (raise, listing the conflicting keys,
    ``merge_to`` unchanged), ``ours`` (keep ``merge_to``'s cells) or ``theirs`` (keep the new
    data). The temporary branch is removed in every outcome. Loads read ``merge_to``. YAML:
    ``branch: {strategy: merge, from: c2, into: main, on_conflict: fail}``. Use it when a
    step recomputes a table from an older snapshot while others keep editing the branch.
    """

    branch_from: str
    merge_to: str = "main"
    on_conflict: str = "fail"
    #: Where ``merge_to`` starts when it does not exist yet (a run-level branch).
    merge_to_start: str | None = None
    kind: ClassVar[str] = "merge"

    def __post_init__(self) -> None:
        validate_ref(self.branch_from, key="from")
        validate_branch(self.merge_to, key="into")
        if self.on_conflict not in ON_CONFLICT:
            raise DoltError(
                f"Invalid on_conflict {self.on_conflict!r} for the merge strategy.",
                fix=f"use one of {list(ON_CONFLICT)}.",
            )

    @property
    def target_branch(self) -> str | None:
        return self.merge_to

    @property
    def initial_branch(self) -> str | None:
        return self.merge_to_start or self.merge_to

    def load_location(self, engine: DoltEngine) -> tuple[str, str | None]:
        if self.merge_to_start and not (engine.exists() and engine.branch_exists(self.merge_to)):
            return self.merge_to_start, self.merge_to_start  # not made yet: what it starts as
        return self.merge_to, self.merge_to

    def save(self, engine: DoltEngine, request: SaveRequest) -> SaveOutcome:
        if self.merge_to_start and not engine.branch_exists(self.merge_to):
            engine.create_branch(self.merge_to, self.merge_to_start, exist_ok=True)
        # Named after this process: if it dies here, the next save removes the branch.
        temp = scratch.branch_name("source")
        engine.create_branch(temp, self.branch_from)
        try:
            written = request.write(engine, temp)
            summary = request.message.summary
            merged = engine.merge(
                temp,
                self.merge_to,
                message=request.message.with_summary(
                    f"{summary} (merged from {self.branch_from} into {self.merge_to})"
                ),
                on_conflict=self.on_conflict,
            )
        finally:
            with contextlib.suppress(DoltError):
                engine.delete_branch(temp)
            scratch.release(temp)
        if (merged.from_commit, merged.to_commit) == (written.from_commit, written.to_commit):
            stats = written.stats  # a fast-forward onto exactly the save's commit: its diff
        else:
            stats = engine.diff_stat(merged.from_commit, merged.to_commit, request.table)
        return SaveOutcome(self.merge_to, merged.from_commit, merged.to_commit, stats, merge=merged)

    def on_run_branch(self, engine: DoltEngine, run_branch: str) -> tuple[BranchStrategy, str]:
        redirected = MergeBranch(self.branch_from, run_branch, self.on_conflict, self.merge_to)
        return redirected, self.merge_to

    def describe(self) -> dict[str, Any]:
        return {
            "strategy": self.kind,
            "from": self.branch_from,
            "into": self.merge_to,
            "on_conflict": self.on_conflict,
        }


def _branch_name_or_none(ref: str) -> str | None:
    try:
        return validate_branch(ref)
    except DoltError:
        return None


# YAML keys -> constructor arguments, per strategy.
_FROM_CONFIG: dict[str, tuple[type, dict[str, str], set[str]]] = {
    "append": (AppendBranch, {"name": "branch"}, set()),
    "new": (NewBranch, {"name": "branch", "start_point": "start_point"}, {"name"}),
    "merge": (
        MergeBranch,
        {"from": "branch_from", "into": "merge_to", "on_conflict": "on_conflict"},
        {"from", "into"},
    ),
}


def branch_strategy(value: str | Mapping[str, Any] | BranchStrategy | None) -> BranchStrategy:
    """The strategy for a catalog's ``branch`` value (string, mapping or strategy object)."""
    if value is None or isinstance(value, str):
        return AppendBranch(value)
    if isinstance(value, Mapping):
        config = dict(value)
        kind = config.pop("strategy", "append")
        if kind not in _FROM_CONFIG:
            raise DoltError(
                f"Unknown branch strategy {kind!r}.",
                fix=f"use one of {sorted(_FROM_CONFIG)}, "
                "e.g. branch: {strategy: merge, from: c2, into: main}.",
            )
        cls, keys, required = _FROM_CONFIG[kind]
        unknown = sorted(set(config) - set(keys))
        missing = sorted(required - set(config))
        if unknown or missing:
            problem = f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}"
            raise DoltError(
                f"branch: {{strategy: {kind}, ...}} has {problem}.",
                fix=f"the {kind} strategy takes {sorted(keys)} "
                f"({', '.join(sorted(required)) or 'none'} required).",
            )
        strategy: BranchStrategy = cls(**{keys[k]: v for k, v in config.items()})
        return strategy
    if all(hasattr(value, attr) for attr in ("save", "load_location", "target_branch")):
        return value
    raise DoltError(
        f"Invalid branch {value!r}.",
        fix="give a branch name, a mapping like {strategy: append, name: main}, "
        "or a strategy object (AppendBranch, NewBranch, MergeBranch).",
    )
