"""What kedro-dolt knows about the surrounding Kedro run, set by ``DoltHooks``.

Node and dataset names are per thread (ThreadRunner runs nodes in threads; ParallelRunner runs
each node and its hooks in a worker process). The run id and project root are per process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class _Process:
    run_id: str | None = None
    pipeline: str | None = None
    project_root: Path | None = None


process = _Process()
_local = threading.local()


def set_node(node: str | None, run_id: str | None = None) -> None:
    _local.node = node
    if run_id:
        _local.run_id = run_id


def clear() -> None:
    """Forget the run: later saves outside ``kedro run`` carry no stale run id or node."""
    _local.__dict__.clear()
    process.run_id = None
    process.pipeline = None


def set_dataset(name: str | None) -> None:
    _local.dataset = name


def current_node() -> str | None:
    return getattr(_local, "node", None)


def current_dataset() -> str | None:
    return getattr(_local, "dataset", None)


def current_run_id() -> str | None:
    return getattr(_local, "run_id", None) or process.run_id


def resolve_database(database: str | Path) -> Path:
    """Relative databases are relative to the Kedro project root when known, else the cwd."""
    path = Path(database).expanduser()
    if path.is_absolute():
        return path
    return (process.project_root or Path.cwd()) / path
