"""Branch strategies: where a save commits and what a load reads by default.

The dataset delegates every branch decision to one of these objects. A catalog may give a
plain string (``branch: main``), a mapping (``branch: {strategy: append, name: main}``) or an
object; :func:`branch_strategy` turns each into a strategy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from .engine import CommitResult, DoltEngine
from .errors import DoltError
from .naming import validate_branch
from .schema import TableSchema


class BranchStrategy(Protocol):
    """Decides the branch a save commits to and the ref a load reads by default."""

    @property
    def branch(self) -> str | None:
        """The branch loads resolve ``HEAD`` against (``None``: the checked-out branch)."""

    def load_ref(self) -> str: ...

    def save(
        self,
        engine: DoltEngine,
        table: str,
        frame: pd.DataFrame,
        *,
        schema: TableSchema,
        message: str,
    ) -> CommitResult: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AppendBranch:
    """Commit each save onto ``branch`` (default: the repository's checked-out branch).

    YAML: ``branch: main`` or ``branch: {strategy: append, name: main}``.
    """

    branch: str | None = None

    def __post_init__(self) -> None:
        if self.branch is not None:
            validate_branch(self.branch)

    def load_ref(self) -> str:
        return self.branch or "HEAD"

    def save(
        self,
        engine: DoltEngine,
        table: str,
        frame: pd.DataFrame,
        *,
        schema: TableSchema,
        message: str,
    ) -> CommitResult:
        return engine.write_table(table, frame, schema=schema, branch=self.branch, message=message)

    def describe(self) -> dict[str, Any]:
        return {"strategy": "append", "name": self.branch}


_STRATEGIES: dict[str, type[AppendBranch]] = {"append": AppendBranch}


def branch_strategy(value: str | Mapping[str, Any] | BranchStrategy | None) -> BranchStrategy:
    """The strategy for a catalog's ``branch`` value (string, mapping or strategy object)."""
    if value is None or isinstance(value, str):
        return AppendBranch(value)
    if isinstance(value, Mapping):
        config = dict(value)
        kind = config.pop("strategy", "append")
        if kind not in _STRATEGIES:
            raise DoltError(
                f"Unknown branch strategy {kind!r}.",
                fix=f"use one of {sorted(_STRATEGIES)}, "
                "e.g. branch: {strategy: append, name: main}.",
            )
        name = config.pop("name", None)
        if config:
            raise DoltError(
                f"Unknown key(s) {sorted(config)} in branch: {{strategy: {kind}, ...}}.",
                fix="the append strategy takes only 'name'.",
            )
        return AppendBranch(name)
    if hasattr(value, "save") and hasattr(value, "load_ref"):
        return value
    raise DoltError(
        f"Invalid branch {value!r}.",
        fix="give a branch name, a mapping like {strategy: append, name: main}, "
        "or a strategy object.",
    )
