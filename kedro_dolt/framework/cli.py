"""``kedro dolt ...``: inspect the Dolt datasets of the current project.

Commands work on the Dolt datasets the current project uses (``--env``): catalog entries and
the datasets its pipelines resolve from factory patterns, as ``kedro catalog resolve-patterns``
does. Each prints a readable table, or with ``--json`` exactly one JSON document on stdout;
logs and messages go to stderr. A Dolt entry that cannot be built is reported with its error
and makes the command exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pandas as pd

from ..datasets import DoltTableDataset
from ..engine.commits import parse_trailers
from ..errors import DoltError
from .cli_common import common as _common
from .cli_common import emit as _emit
from .plan_cli import plan
from .project import dolt_datasets
from .render import DIFF_META, diff_rows, fitted, render, terminal_width


def _short_ref(ref: str) -> str:
    return ref[:8] if len(ref) == 32 and ref.isalnum() else ref


def _branch(dataset: DoltTableDataset) -> str | None:
    return dataset.strategy.target_branch


@click.group(name="kedro-dolt")
def commands() -> None:
    """kedro-dolt commands."""


@commands.group(name="dolt")
def dolt() -> None:
    """Inspect the Dolt datasets of this project: status, log, diff, changed, plan."""


dolt.add_command(plan)


@dolt.command()
@_common
def status(metadata: Any, env: str | None, as_json: bool) -> None:
    """Every Dolt dataset: database, branch, head commit, table exists, uncommitted changes."""
    project = dolt_datasets(metadata, env)
    rows: list[dict[str, Any]] = []
    for name, dataset in sorted(project.datasets.items()):
        engine = dataset.engine
        row: dict[str, Any] = {
            "dataset": name,
            "database": engine.location,
            "table": dataset.table,
        }
        if not engine.exists():
            rows.append(
                {
                    **row,
                    "branch": _branch(dataset),
                    "head": None,
                    "table_exists": False,
                    "uncommitted": False,
                }
            )
            continue
        state = engine.state()
        branch = _branch(dataset) or state.checked_out
        head = state.heads.get(branch)
        if branch == state.checked_out:
            dirty = any(change[0] == dataset.table for change in state.working_changes)
        else:
            dirty = branch in state.dirty_branches
        rows.append(
            {
                **row,
                "branch": branch,
                "head": head,
                "table_exists": bool(head) and engine.has_table(dataset.table, ref=branch),
                "uncommitted": dirty,
            }
        )
    # Broken entries stay in the list, with their error, so they cannot go unnoticed.
    rows.extend({"dataset": name, "error": error} for name, error in sorted(project.broken.items()))
    rows.sort(key=lambda r: str(r["dataset"]))
    table_rows = [
        {
            **r,
            "head": (r.get("head") or "-")[:8],
            "database": Path(r["database"]).name if "database" in r else "-",
            "table_exists": r.get("table_exists", "BROKEN"),
        }
        for r in rows
    ]
    _emit(
        rows,
        render(
            table_rows,
            ["dataset", "database", "table", "branch", "head", "table_exists", "uncommitted"],
        ),
        as_json,
    )
    project.report_broken()


@dolt.command()
@click.argument("dataset_name", required=False)
@click.option("-n", "limit", type=int, default=20, show_default=True, help="Commits to show.")
@click.option(
    "--ref",
    default=None,
    help="Show the commits up to this ref: branch, tag, commit, X~N or a Kedro run id "
    "(default: the dataset's branch).",
)
@_common
def log(
    metadata: Any,
    dataset_name: str | None,
    limit: int,
    ref: str | None,
    env: str | None,
    as_json: bool,
) -> None:
    """Commits of a dataset's table (all Dolt datasets without DATASET), with lineage."""
    project = dolt_datasets(metadata, env)
    rows: list[dict[str, Any]] = []
    for name, dataset in project.pick(dataset_name).items():
        if not dataset.engine.exists():
            continue
        try:
            at = dataset.resolve_ref(ref, _branch(dataset)) if ref else None
            history = dataset.engine.table_history(
                dataset.table, branch=_branch(dataset), limit=limit, ref=at
            )
        except DoltError as exc:
            raise click.ClickException(str(exc)) from exc
        for entry in history:
            trailers = parse_trailers(entry.message)
            rows.append(
                {
                    "commit": entry.commit,
                    "date": entry.date,
                    "dataset": name,
                    "table": dataset.table,
                    "run_id": trailers.get("run_id"),
                    "pipeline": trailers.get("pipeline"),
                    "node": trailers.get("node"),
                    "project": trailers.get("project"),
                    "kedro_version": trailers.get("kedro_version"),
                    "author": entry.author,
                    "message": entry.message.splitlines()[0] if entry.message else "",
                }
            )
    rows.sort(key=lambda r: r["date"], reverse=True)
    rows = rows[:limit]
    shown = [{**r, "commit": r["commit"][:8], "date": r["date"][:19]} for r in rows]
    _emit(
        rows,
        render(shown, ["commit", "date", "dataset", "run_id", "pipeline", "node", "message"]),
        as_json,
    )
    if dataset_name is None:
        project.report_broken()


@dolt.command()
@click.argument("dataset_name")
@click.option(
    "--from",
    "from_ref",
    default=None,
    help="Older ref or Kedro run id (default: the table's previous version).",
)
@click.option(
    "--to", "to_ref", default=None, help="Newer ref or run id (default: the dataset's branch)."
)
@click.option("-n", "limit", type=int, default=20, show_default=True, help="Rows to show.")
@click.option("--all-columns", is_flag=True, help="Show every column, not just those that changed.")
@_common
def diff(
    metadata: Any,
    dataset_name: str,
    from_ref: str | None,
    to_ref: str | None,
    limit: int,
    all_columns: bool,
    env: str | None,
    as_json: bool,
) -> None:
    """Diff stats and the first changed rows of a dataset's table between two refs: each
    row's key and the columns that changed (old → new); --json keeps every column."""
    dataset = dolt_datasets(metadata, env).pick(dataset_name)[dataset_name]
    engine, branch = dataset.engine, _branch(dataset)
    try:
        if to_ref is None or from_ref is None:
            # Default: the table's last change, not just the branch's last commit.
            history = engine.table_history(dataset.table, branch=branch, limit=2)
            to_ref = to_ref or branch or engine.active_branch()
            if from_ref is None:
                from_ref = history[1].commit if len(history) > 1 else f"{to_ref}~1"
        older, newer = dataset.resolve_ref(from_ref, branch), dataset.resolve_ref(to_ref, branch)
        stats = engine.diff_stat(older, newer, dataset.table)
        changes = engine.diff_rows(older, newer, dataset.table, branch=branch, limit=limit)
        key, names = _key_and_columns(dataset, newer, branch)
    except DoltError as exc:
        raise click.ClickException(str(exc)) from exc
    changes = changes.drop(columns=[c for c in changes.columns if c in DIFF_META[:4]])
    records = json.loads(changes.to_json(orient="records", date_format="iso"))
    data = {
        "dataset": dataset_name,
        "table": dataset.table,
        "from": from_ref,
        "to": to_ref,
        "from_commit": older,
        "to_commit": newer,
        "primary_key": key,
        "rows_added": stats.added,
        "rows_modified": stats.modified,
        "rows_deleted": stats.deleted,
        "rows": records,
    }
    header = (
        f"{dataset_name} ({dataset.table}) {_short_ref(from_ref)}..{_short_ref(to_ref)}: "
        f"+{stats.added} ~{stats.modified} -{stats.deleted} rows"
    )
    if records:
        shown, columns = diff_rows(pd.DataFrame(records), key, all_columns, names)
        body = fitted(shown, columns, terminal_width())
    else:
        body = "(no changed rows)"
    _emit(data, f"{header}\n{body}", as_json)


def _key_and_columns(
    dataset: DoltTableDataset, ref: str, branch: str | None
) -> tuple[list[str], list[str]]:
    """The table's primary key and columns at ``ref`` (none when it has no table there)."""
    try:
        schema = dataset.engine.read_table(dataset.table, ref=ref, branch=branch, limit=0).schema
    except DoltError:
        return [], []
    return list(schema.primary_key), schema.names


@dolt.command()
@click.option(
    "--since",
    required=True,
    help="A ref (branch, tag, commit, X@{time}) or a Kedro run id: what changed after it "
    "(after that run's saves).",
)
@_common
def changed(metadata: Any, since: str, env: str | None, as_json: bool) -> None:
    """Dolt datasets whose table content changed since a ref or run, and the command that
    reruns only what depends on them."""
    project = dolt_datasets(metadata, env)
    rows: list[dict[str, Any]] = []
    for name, dataset in sorted(project.datasets.items()):
        engine, branch = dataset.engine, _branch(dataset)
        if not engine.exists():
            continue
        try:
            before = engine.table_hash(
                dataset.table, ref=dataset.resolve_ref(since, branch), branch=branch
            )
        except DoltError:
            before = None  # the ref is unknown here: cannot prove the table unchanged
        now = engine.table_hash(dataset.table, ref=branch or "HEAD", branch=branch)
        rows.append(
            {
                "dataset": name,
                "table": dataset.table,
                "database": engine.location,
                "changed": before != now,
                "hash_before": before,
                "hash_now": now,
            }
        )
    names = [r["dataset"] for r in rows if r["changed"]]
    command = f"kedro run --from-inputs={','.join(names)}" if names else None
    shown = [
        {
            **r,
            "database": Path(r["database"]).name,
            "hash_before": (r["hash_before"] or "-")[:8],
            "hash_now": (r["hash_now"] or "-")[:8],
        }
        for r in rows
    ]
    text = render(shown, ["dataset", "database", "table", "changed", "hash_before", "hash_now"])
    text += "\n\n" + (
        f"Rerun what depends on them:\n  {command}"
        if command
        else "Nothing changed: nothing to rerun."
    )
    data = {"since": since, "datasets": rows, "changed": names, "command": command}
    _emit({**data, "broken": project.broken}, text, as_json)
    project.report_broken()
