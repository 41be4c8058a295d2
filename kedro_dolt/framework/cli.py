"""``kedro dolt ...``: inspect the Dolt datasets of the current project.

Commands work on the Dolt datasets the current project uses (``--env``): catalog entries and
the datasets its pipelines resolve from factory patterns, as ``kedro catalog resolve-patterns``
does. Each prints a readable table, or with ``--json`` exactly one JSON document on stdout;
logs and messages go to stderr. A Dolt entry that cannot be built is reported with its error
and makes the command exit 1.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from ..datasets import DoltTableDataset
from ..engine.commits import parse_trailers
from ..errors import DoltError
from ..naming import RUN_ID_RE
from .hooks import entry_config, is_dolt_config

_STDOUT = "kedro_dolt.stdout"
_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--env", "-e", default=None, help="Kedro configuration environment."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
]


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        # Only the command's own output goes to stdout: whatever else prints meanwhile (Kedro's
        # rich log handler writes to stdout) goes to stderr, so `--json | jq` works.
        click.get_current_context().meta[_STDOUT] = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return command(*args, **kwargs)

    for option in reversed(_OPTIONS):
        run = option(run)
    return click.pass_obj(run)


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table (no markup, so branch names print as they are)."""
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(text.rstrip() for text in [line, rule, *body])


def _emit(data: Any, table: str, as_json: bool) -> None:
    out: IO[str] = click.get_current_context().meta.get(_STDOUT) or sys.stdout
    click.echo(json.dumps(data, indent=2, default=str) if as_json else table, file=out)


@dataclass
class ProjectDatasets:
    """The project's Dolt table datasets by name, and the Dolt entries that failed to build."""

    datasets: dict[str, DoltTableDataset] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    def pick(self, name: str | None) -> dict[str, DoltTableDataset]:
        if name is None:
            return self.datasets
        if name in self.broken:
            raise click.ClickException(f"Dataset {name!r} is broken: {self.broken[name]}")
        if name not in self.datasets:
            raise click.ClickException(
                f"{name!r} is not a Dolt table dataset of this project; "
                f"choose from: {', '.join(sorted(self.datasets)) or 'none'}."
            )
        return {name: self.datasets[name]}

    def report_broken(self) -> None:
        """After the output: name each broken entry on stderr and exit 1."""
        if not self.broken:
            return
        lines = [f"  {name}: {error}" for name, error in sorted(self.broken.items())]
        click.echo("Broken Dolt dataset(s) in the catalog:\n" + "\n".join(lines), err=True)
        click.get_current_context().exit(1)


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    # Kedro logs while it builds the session and catalog; errors still show (on stderr).
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _dolt_datasets(metadata: Any, env: str | None) -> ProjectDatasets:
    """The Dolt table datasets the project uses (``DoltSQLQueryDataset`` has no table)."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.io.core import is_parameter

    with _quiet_logging():
        session = KedroSession.create(project_path=metadata.project_path, env=env)
        try:
            catalog = session.load_context().catalog
            # Catalog entries, plus what the pipelines use: factory-pattern datasets exist
            # only once a name used by a pipeline is resolved against the patterns.
            names = set(catalog.keys())
            try:
                for pipe in pipelines.values():
                    names.update(pipe.datasets())
            except Exception as exc:
                raise click.ClickException(f"Cannot load the project's pipelines: {exc}") from exc
            found = ProjectDatasets()
            for name in sorted(n for n in names if not is_parameter(n)):
                try:
                    dataset = catalog.get(name)
                except Exception as exc:
                    config = entry_config(catalog, name)
                    # A custom catalog without Kedro's resolver: cannot tell, so report it.
                    if config is None or is_dolt_config(config):
                        found.broken[name] = str(exc)
                    continue
                if isinstance(dataset, DoltTableDataset):
                    found.datasets[name] = dataset
            return found
        finally:
            session.close()


def _short_ref(ref: str) -> str:
    return ref[:8] if len(ref) == 32 and ref.isalnum() else ref


def _branch(dataset: DoltTableDataset) -> str | None:
    return dataset.strategy.target_branch


@click.group(name="kedro-dolt")
def commands() -> None:
    """kedro-dolt commands."""


@commands.group(name="dolt")
def dolt() -> None:
    """Inspect the Dolt datasets of this project: status, log, diff, changed."""


@dolt.command()
@_common
def status(metadata: Any, env: str | None, as_json: bool) -> None:
    """Every Dolt dataset: database, branch, head commit, table exists, uncommitted changes."""
    project = _dolt_datasets(metadata, env)
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
@_common
def log(
    metadata: Any, dataset_name: str | None, limit: int, env: str | None, as_json: bool
) -> None:
    """Commits of a dataset's table (all Dolt datasets without DATASET), with lineage."""
    project = _dolt_datasets(metadata, env)
    rows: list[dict[str, Any]] = []
    for name, dataset in project.pick(dataset_name).items():
        if not dataset.engine.exists():
            continue
        for entry in dataset.engine.table_history(
            dataset.table, branch=_branch(dataset), limit=limit
        ):
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
    "--from", "from_ref", default=None, help="Older ref (default: the table's previous version)."
)
@click.option("--to", "to_ref", default=None, help="Newer ref (default: the dataset's branch).")
@click.option("-n", "limit", type=int, default=20, show_default=True, help="Rows to show.")
@_common
def diff(
    metadata: Any,
    dataset_name: str,
    from_ref: str | None,
    to_ref: str | None,
    limit: int,
    env: str | None,
    as_json: bool,
) -> None:
    """Diff stats and the first changed rows of a dataset's table between two refs."""
    dataset = _dolt_datasets(metadata, env).pick(dataset_name)[dataset_name]
    engine, branch = dataset.engine, _branch(dataset)
    try:
        if to_ref is None or from_ref is None:
            # Default: the table's last change, not just the branch's last commit.
            history = engine.table_history(dataset.table, branch=branch, limit=2)
            to_ref = to_ref or branch or engine.active_branch()
            if from_ref is None:
                from_ref = history[1].commit if len(history) > 1 else f"{to_ref}~1"
        stats = engine.diff_stat(from_ref, to_ref, dataset.table)
        changes = engine.diff_rows(from_ref, to_ref, dataset.table, branch=branch, limit=limit)
    except DoltError as exc:
        raise click.ClickException(str(exc)) from exc
    changes = changes.drop(
        columns=[
            c
            for c in changes.columns
            if c in ("from_commit", "to_commit", "from_commit_date", "to_commit_date")
        ]
    )
    records = json.loads(changes.to_json(orient="records", date_format="iso"))
    data = {
        "dataset": dataset_name,
        "table": dataset.table,
        "from": from_ref,
        "to": to_ref,
        "rows_added": stats.added,
        "rows_modified": stats.modified,
        "rows_deleted": stats.deleted,
        "rows": records,
    }
    header = (
        f"{dataset_name} ({dataset.table}) {_short_ref(from_ref)}..{_short_ref(to_ref)}: "
        f"+{stats.added} ~{stats.modified} -{stats.deleted} rows"
    )
    body = render(records, list(changes.columns)) if records else "(no changed rows)"
    _emit(data, f"{header}\n{body}", as_json)


def _since_ref(dataset: DoltTableDataset, since: str) -> str:
    """The ref of ``since`` for one dataset: a run id means what that run left behind."""
    return dataset.ref_of_run(since, _branch(dataset)) if RUN_ID_RE.match(since) else since


@dolt.command()
@click.option("--since", required=True, help="A ref (branch, tag, commit, X@{time}) or run id.")
@_common
def changed(metadata: Any, since: str, env: str | None, as_json: bool) -> None:
    """Dolt datasets whose table content changed since a ref or run, and the command that
    reruns only what depends on them."""
    project = _dolt_datasets(metadata, env)
    rows: list[dict[str, Any]] = []
    for name, dataset in sorted(project.datasets.items()):
        engine, branch = dataset.engine, _branch(dataset)
        if not engine.exists():
            continue
        try:
            before = engine.table_hash(dataset.table, ref=_since_ref(dataset, since), branch=branch)
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
