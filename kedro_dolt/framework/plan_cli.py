"""``kedro dolt plan``: what ``kedro run --runner kedro_dolt.IncrementalRunner`` would do."""

from __future__ import annotations

from typing import Any

import click

from .cli_common import common, emit
from .render import render


def _names(value: str | None) -> list[str] | None:
    return [n.strip() for n in value.split(",") if n.strip()] if value else None


def _params(value: str | None) -> dict[str, Any]:
    from kedro.framework.cli.utils import _split_params

    return dict(_split_params(click.get_current_context(), None, value)) if value else {}


@click.command(name="plan")
@click.option("--pipeline", "-p", "pipeline_name", default=None, help="Pipeline to plan.")
@click.option("--params", default=None, help="Runtime params, as for kedro run (k=v,k2=v2).")
@click.option("--from-nodes", default=None, help="As for kedro run.")
@click.option("--to-nodes", default=None, help="As for kedro run.")
@click.option("--nodes", "-n", "node_names", default=None, help="As for kedro run.")
@click.option("--tags", "-t", default=None, help="As for kedro run.")
@click.option("--no-restore", is_flag=True, help="Plan as with --runner-params restore=false.")
@common
def plan(
    metadata: Any,
    pipeline_name: str | None,
    params: str | None,
    from_nodes: str | None,
    to_nodes: str | None,
    node_names: str | None,
    tags: str | None,
    no_restore: bool,
    env: str | None,
    as_json: bool,
) -> None:
    """Every node of the pipeline with what an incremental run would do and why: skip
    (fresh), restore (from run <id>) or run (the reason)."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession

    # Here, not at import: kedro.runner configures Kedro's logging when imported.
    from .incremental import plan as make_plan

    session = KedroSession.create(
        project_path=metadata.project_path, env=env, runtime_params=_params(params)
    )
    try:
        catalog = session.load_context().catalog
        name = pipeline_name or "__default__"
        if name not in pipelines:
            raise click.ClickException(f"No pipeline {name!r}; choose from: {sorted(pipelines)}")
        pipeline = pipelines[name].filter(
            tags=_names(tags),
            from_nodes=_names(from_nodes),
            to_nodes=_names(to_nodes),
            node_names=_names(node_names),
        )
        decisions = make_plan(pipeline, catalog, restore=not no_restore)
    finally:
        session.close()
    rows = [d.to_dict() for d in decisions]
    shown = [{**r, "from_run": r["from_run"] or ""} for r in rows]
    counts = {a: sum(r["action"] == a for r in rows) for a in ("run", "skip", "restore")}
    text = render(shown, ["node", "action", "reason", "from_run"])
    text += f"\n\n{counts['run']} to run, {counts['skip']} to skip, {counts['restore']} to restore."
    emit({"pipeline": name, "nodes": rows, "counts": counts}, text, as_json)
