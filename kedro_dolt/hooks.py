"""``DoltHooks``: tells Dolt datasets which Kedro run, node and dataset they work for.

Registered through the ``kedro.hooks`` entry point; disable it with
``DISABLE_HOOKS_FOR_PLUGINS = ("kedro-dolt",)`` in ``settings.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from . import context as run_context


class DoltHooks:
    @hook_impl
    def after_context_created(self, context: Any) -> None:
        # Before the catalog is built, so relative databases resolve against the project.
        run_context.process.project_root = Path(context.project_path)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        run_context.process.run_id = run_params.get("run_id")
        names = run_params.get("pipeline_names") or ["__default__"]
        run_context.process.pipeline = ",".join(names)

    # pluggy passes only arguments without defaults. Kedro saves a node's outputs after
    # after_node_run, so the node stays current until the next node starts in this thread.
    @hook_impl
    def before_node_run(self, node: Any, run_id: str | None) -> None:
        run_context.set_node(node.name, run_id)

    @hook_impl
    def after_pipeline_run(self) -> None:
        run_context.clear()

    @hook_impl
    def on_pipeline_error(self) -> None:
        run_context.clear()

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, node: Any) -> None:
        run_context.set_dataset(dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Any) -> None:
        run_context.set_dataset(None)


dolt_hooks = DoltHooks()
