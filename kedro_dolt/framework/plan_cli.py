"""``kedro dolt plan``: what ``kedro run --runner kedro_dolt.IncrementalRunner`` would do.

The plan takes ``kedro run``'s options with Kedro's own parsers, filters the pipeline and
builds the catalog as ``KedroSession.run`` does, and applies the run-level branch as
``DoltHooks`` does, so it decides on the same nodes and the same versions as the run.
"""

from __future__ import annotations

from typing import Any

import click

from . import context as run_context
from .cli_common import common, emit
from .hooks import DoltHooks, run_level_branch
from .render import render


def _kedro_parser(name: str) -> Any:
    """Kedro's own ``kedro run`` option parser ``name``, imported when an option is parsed:
    ``kedro.framework.cli.utils`` imports ``kedro.framework.project``, which configures
    logging, and importing kedro-dolt must not (plugins are imported by every kedro command)."""

    def parse(ctx: click.Context, param: Any, value: Any) -> Any:
        from kedro.framework.cli import utils

        return getattr(utils, name)(ctx, param, value)

    return parse


_split_load_versions = _kedro_parser("_split_load_versions")
_split_params = _kedro_parser("_split_params")
split_node_names = _kedro_parser("split_node_names")
split_string = _kedro_parser("split_string")


def _selected(pipeline: str | None, pipelines: list[str]) -> list[str]:
    # As `kedro run`: --pipeline is the deprecated spelling of one --pipelines name.
    if pipeline and pipelines:
        raise click.UsageError("Options '--pipeline' and '--pipelines' cannot be used together")
    return [pipeline] if pipeline else list(dict.fromkeys(pipelines))


def _pipeline(names: list[str], selection: dict[str, Any]) -> Any:
    """The pipeline ``KedroSession.run`` runs: the named pipelines (default ``__default__``)
    summed, then filtered with the same keywords."""
    from kedro.framework.project import pipelines
    from kedro.pipeline import Pipeline

    combined = Pipeline([])
    for name in names or ["__default__"]:
        if name not in pipelines:
            if hasattr(pipelines, "set_requested"):
                pipelines.set_requested(None)  # list them all, not only the requested ones
            raise click.ClickException(f"No pipeline {name!r}; choose from: {sorted(pipelines)}")
        combined += pipelines[name]
    try:
        return combined.filter(
            tags=selection["tags"],
            from_nodes=selection["from_nodes"],
            to_nodes=selection["to_nodes"],
            node_names=selection["node_names"],
            from_inputs=selection["from_inputs"],
            to_outputs=selection["to_outputs"],
            node_namespaces=selection["namespaces"],
        )
    except ValueError as exc:  # e.g. no such node or namespace: the run fails the same way
        raise click.ClickException(str(exc)) from exc


def _restore(no_restore: bool, runner_params: dict[str, Any]) -> bool:
    # Parsed by the runner's own parser: `--runner-params restore=off` plans as it runs.
    from .incremental.runner import _flag

    return not no_restore and _flag(runner_params.get("restore", True))


def _run_branch(session: Any, runtime_params: dict[str, Any]) -> str | None:
    """The run-level branch the run would apply: ``DoltHooks`` applies ``dolt_branch`` when
    it is registered (not disabled in settings.py) and the catalog has a Dolt dataset."""
    manager = getattr(session, "_hook_manager", None)
    plugins = manager.get_plugins() if manager is not None else ()
    if not any(isinstance(p, DoltHooks) and p.active for p in plugins):
        return None
    return run_level_branch(runtime_params)[0]


@click.command(name="plan")
@click.option("--pipeline", "-p", "pipeline_name", default=None, help="Pipeline to plan.")
@click.option(
    "--pipelines", default="", callback=split_string, help="Pipelines to plan (a,b), as run."
)
@click.option(
    "--params",
    type=click.UNPROCESSED,
    default="",
    callback=_split_params,
    help="Runtime params, as for kedro run (k=v,k2=v2).",
)
@click.option("--from-nodes", default="", callback=split_node_names, help="As for kedro run.")
@click.option("--to-nodes", default="", callback=split_node_names, help="As for kedro run.")
@click.option(
    "--nodes", "-n", "node_names", default="", callback=split_node_names, help="As for kedro run."
)
@click.option("--from-inputs", default="", callback=split_string, help="As for kedro run.")
@click.option("--to-outputs", default="", callback=split_string, help="As for kedro run.")
@click.option("--tags", "-t", default="", callback=split_string, help="As for kedro run.")
@click.option(
    "--namespaces", "-ns", default="", callback=split_node_names, help="As for kedro run."
)
@click.option(
    "--load-versions",
    "-lv",
    default="",
    callback=_split_load_versions,
    help="As for kedro run (ds1:version,ds2:version).",
)
@click.option(
    "--runner-params",
    type=click.UNPROCESSED,
    default="",
    callback=_split_params,
    help="The IncrementalRunner's params, as for kedro run (restore=false).",
)
@click.option("--no-restore", is_flag=True, help="Plan as with --runner-params restore=false.")
@common
def plan(
    metadata: Any,
    pipeline_name: str | None,
    pipelines: list[str],
    params: dict[str, Any],
    load_versions: dict[str, str],
    runner_params: dict[str, Any],
    no_restore: bool,
    env: str | None,
    as_json: bool,
    **selection: Any,
) -> None:
    """Every node of the pipeline with what an incremental run would do and why: skip
    (fresh), restore (from run <id>) or run (the reason)."""
    from kedro.framework.project import pipelines as registry
    from kedro.framework.session import KedroSession

    # Here, not at import: kedro.runner configures Kedro's logging when imported.
    from .incremental import plan as make_plan

    names = _selected(pipeline_name, pipelines)
    restore = _restore(no_restore, runner_params)
    selection["tags"] = tuple(selection["tags"])  # as `kedro run` passes them
    selection["node_names"] = tuple(selection["node_names"])
    session = KedroSession.create(
        project_path=metadata.project_path, env=env, runtime_params=params
    )
    try:
        set_requested = getattr(registry, "set_requested", None)
        if set_requested is not None:  # newer Kedro 1.x: load only the requested pipelines
            set_requested(names or None)
        context = session.load_context()
        pipeline = _pipeline(names, selection)
        if "__default__" not in (names or ["__default__"]) and hasattr(
            context, "_pipelines_to_validate"
        ):  # as KedroSession.run (newer Kedro 1.x): validate those pipelines only
            context._pipelines_to_validate = list(names)
        # As KedroSession.run, --load-versions goes to the catalog (and to its hooks).
        catalog = context._get_catalog(
            save_version=session.store["session_id"], load_versions=load_versions
        )
        branch = _run_branch(session, session.store.get("runtime_params") or {})
        run_context.start_run(branch=branch)  # where Dolt datasets read it, as in the run
        try:
            decisions = make_plan(pipeline, catalog, restore=restore)
        finally:
            run_context.clear()
    finally:
        session.close()
    rows = [d.to_dict() for d in decisions]
    shown = [{**r, "from_run": r["from_run"] or ""} for r in rows]
    counts = {a: sum(r["action"] == a for r in rows) for a in ("run", "skip", "restore")}
    text = render(shown, ["node", "action", "reason", "from_run"])
    text += f"\n\n{counts['run']} to run, {counts['skip']} to skip, {counts['restore']} to restore."
    name = ",".join(names) or "__default__"
    emit({"pipeline": name, "nodes": rows, "counts": counts}, text, as_json)
