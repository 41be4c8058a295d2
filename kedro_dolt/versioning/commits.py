"""The commit message of a save made now: its trailers from the current Kedro run.

The message format itself is the engine's (:mod:`kedro_dolt.engine.commits`); it is
re-exported here, where kedro-dolt 0.2.0 pre-releases had it.
"""

from __future__ import annotations

import kedro

from ..engine.commits import (
    TRAILER_KEYS,
    CommitMessage,
    commit_message,
    parse_trailers,
    trailer_line,
)
from ..framework import context


def save_trailers(*, dataset: str | None, table: str) -> dict[str, str]:
    """The trailers of a save made now, from the current Kedro run context."""
    values = {
        "dataset": dataset,
        "table": table,
        "run_id": context.current_run_id(),
        "node": context.current_node(),
        "pipeline": context.current_pipeline(),
        "project": context.project_name(),
        "kedro_version": kedro.__version__,
        "restored_from": context.restored_from(),
    }
    return {k: v for k, v in values.items() if v}


__all__ = [
    "TRAILER_KEYS",
    "CommitMessage",
    "commit_message",
    "parse_trailers",
    "save_trailers",
    "trailer_line",
]
