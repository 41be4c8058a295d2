"""Whether a memo row can be believed before a node is skipped or restored on it.

A row this user wrote carries a valid seal (:mod:`.seal`). A row without one (written by
another user or machine, or edited by hand) is believed only when everything it claims can be
checked in Dolt's history: every persistent output is a Dolt table version, the recorded
commit holds exactly that version of the recorded table, and that commit was made by the
node (its ``Kedro-Node`` trailer). Anything else: the node runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.io.core import DatasetError

from ...engine.commits import parse_trailers
from .memo import MemoEntry
from .versions import content_of, is_dolt


def untrusted(node: Any, entry: MemoEntry, dataset_of: Callable[[str], Any]) -> str | None:
    """None when ``entry`` verifies, else why not."""
    if entry.sealed:
        return None
    for name, output in entry.outputs.items():
        if output.version.startswith("mem:"):
            continue  # claims nothing about content: how it is made is in the key
        dataset = dataset_of(name)
        if not is_dolt(dataset) or not output.commit or not output.table:
            return f"not sealed by this user, and output {name!r} is not a Dolt table to check"
        why = _check(node.name, dataset.engine, output.table, output.commit, output.version)
        if why is not None:
            return f"output {name!r}: {why}"
    return None


def _check(node: str, engine: Any, table: str, commit: str, version: str) -> str | None:
    claimed = (content_of(version) or "").removeprefix("dolt:")
    try:
        found = engine.table_hash(table, ref=commit)
        log = engine.log(commit, limit=1)
    except DatasetError:
        return f"commit {commit[:8]} cannot be read"
    if found != claimed:
        return f"commit {commit[:8]} does not hold the version it claims"
    trailers = parse_trailers(log[0].message) if log else {}
    if trailers.get("node") != node:
        return f"commit {commit[:8]} was not made by this node"
    return None
