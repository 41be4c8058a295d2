"""Commit messages: a short human summary plus machine-readable lineage trailers.

Dolt keeps only author, dates and the message with a commit, so lineage lives in the message
as git-style trailer lines::

    kedro: save companies (node: preprocess)

    Kedro-Dataset: companies
    Kedro-Table: companies
    Kedro-Run-Id: 2026-11-24T07.01.12.421Z
    Kedro-Node: preprocess
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import kedro

from . import context

TRAILER_KEYS = {
    "dataset": "Kedro-Dataset",
    "table": "Kedro-Table",
    "run_id": "Kedro-Run-Id",
    "node": "Kedro-Node",
    "pipeline": "Kedro-Pipeline",
    "project": "Kedro-Project",
    "kedro_version": "Kedro-Version",
}
_TRAILER_RE = re.compile(r"^(Kedro-[A-Za-z-]+): (.*)$")


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
    }
    return {k: v for k, v in values.items() if v}


def commit_message(summary: str | None, trailers: Mapping[str, str]) -> str:
    """``summary`` (or the default one) followed by a blank line and the trailer lines."""
    # Values stay on one line, or they could forge trailers of their own.
    values = {k: " ".join(str(v).split()) for k, v in trailers.items()}
    if not summary:
        name = values.get("dataset") or values.get("table", "table")
        node = values.get("node")
        summary = f"kedro: save {name}" + (f" (node: {node})" if node else "")
    lines = [f"{TRAILER_KEYS[k]}: {v}" for k, v in values.items()]
    return summary.rstrip() + "\n\n" + "\n".join(lines)


def parse_trailers(message: str) -> dict[str, str]:
    """The Kedro trailers of a commit message, keyed like :data:`TRAILER_KEYS`."""
    by_header = {v: k for k, v in TRAILER_KEYS.items()}
    found: dict[str, str] = {}
    # Trailers are the last paragraph, as in git: a summary cannot pose as one.
    last_paragraph = message.strip().split("\n\n")[-1]
    for line in last_paragraph.splitlines():
        match = _TRAILER_RE.match(line.strip())
        if match and match.group(1) in by_header:
            found[by_header[match.group(1)]] = match.group(2)
    return found
