"""What kedro-dolt knows about the surrounding Kedro run, set by ``DoltHooks``.

Node and dataset names are per thread (ThreadRunner runs nodes in threads; ParallelRunner runs
each node and its hooks in a worker process). Run-wide values (run id, pipeline, run-level
branch, the record spool) live in environment variables: ParallelRunner's worker processes
start after ``before_pipeline_run`` and inherit them.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_ENV = {
    "run_id": "KEDRO_DOLT_RUN_ID",
    "pipeline": "KEDRO_DOLT_PIPELINE",
    "branch": "KEDRO_DOLT_RUN_BRANCH",
    "spool": "KEDRO_DOLT_SPOOL",
}


@dataclass
class _Process:
    project_root: Path | None = None
    # What an IncrementalRunner decided per node, for the run manifest (main process only).
    decisions: list[dict[str, Any]] = field(default_factory=list)


process = _Process()
_local = threading.local()


def start_run(**values: str | None) -> None:
    for key, value in values.items():
        if value:
            os.environ[RUN_ENV[key]] = value
        else:
            os.environ.pop(RUN_ENV[key], None)


def run_value(key: str) -> str | None:
    return os.environ.get(RUN_ENV[key]) or None


def clear() -> None:
    """Forget the run: later saves outside ``kedro run`` carry no stale run id or node."""
    _local.__dict__.clear()
    process.decisions = []
    for name in RUN_ENV.values():
        os.environ.pop(name, None)


def set_node(node: str | None, run_id: str | None = None) -> None:
    _local.node = node
    if run_id:
        _local.run_id = run_id


def set_dataset(name: str | None) -> None:
    _local.dataset = name


def set_restored_from(run_id: str | None) -> None:
    """While an IncrementalRunner restores a node's outputs: the run they come from."""
    _local.restored_from = run_id


def restored_from() -> str | None:
    return getattr(_local, "restored_from", None)


def note_decisions(decisions: list[dict[str, Any]]) -> None:
    process.decisions = list(decisions)


def current_node() -> str | None:
    return getattr(_local, "node", None)


def current_dataset() -> str | None:
    return getattr(_local, "dataset", None)


def current_run_id() -> str | None:
    return getattr(_local, "run_id", None) or run_value("run_id")


def current_pipeline() -> str | None:
    return run_value("pipeline")


def run_branch() -> str | None:
    return run_value("branch")


def project_name() -> str | None:
    # Only when Kedro set a project up: importing kedro.framework.project ourselves would
    # configure Kedro's logging in plain-Python use.
    project = sys.modules.get("kedro.framework.project")
    return getattr(project, "PACKAGE_NAME", None)


def display_path(location: str | Path) -> str:
    """A database path relative to the project root when inside it (shorter in logs and
    kedro-viz); a server's ``mysql://`` location as it is."""
    if "://" in str(location):
        return str(location)
    path, root = Path(location), process.project_root or Path.cwd()
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def resolve_database(database: str | os.PathLike[str] | Any) -> Path:
    """Relative databases are relative to the Kedro project root when known, else the cwd.

    ``database`` may also be a ``doltcli.Dolt`` repository object, as the older Dolt Python
    tools (dolt-integrations) took: its ``repo_dir`` is used.
    """
    if not isinstance(database, (str, os.PathLike)):
        database = _doltcli_repo_dir(database)
    if "\x00" in str(database):
        from ..errors import DoltError  # errors imports kedro; context is imported early

        raise DoltError(
            f"Invalid database path {str(database)!r}: it holds a NUL character.",
            fix="give the path of a directory, e.g. database: data/warehouse.",
        )
    path = Path(database).expanduser()
    if path.is_absolute():
        return path
    return (process.project_root or Path.cwd()) / path


def _doltcli_repo_dir(database: object) -> str:
    # A doltcli.Dolt exists only once doltcli is imported: no import, and no dependency, here.
    doltcli = sys.modules.get("doltcli")
    if doltcli is not None and isinstance(database, doltcli.Dolt):
        return str(database.repo_dir)
    from ..errors import DoltError  # imports Kedro: keep this module light for the hook

    raise DoltError(
        f"Invalid database {database!r}.",
        fix="give the path of a Dolt repository (or a doltcli.Dolt repository object).",
    )
