"""``kedro run --runner kedro_dolt.IncrementalRunner``: run only the nodes whose results are
not already in Dolt.

Each node is decided when its turn comes, after the nodes it depends on (so a node that reran
and wrote the same table version leaves its consumers fresh: early cutoff). ``mode`` picks the
execution (``sequential``, ``thread`` or ``parallel``, as Kedro's runners), e.g.
``--runner-params mode=thread,max_workers=4``; ``restore=false`` turns restoring from history
off. Memos of the nodes that succeeded are committed when the run ends, also when it fails.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from itertools import chain
from typing import Any

from kedro.pipeline import Pipeline
from kedro.runner import ParallelRunner, SequentialRunner, Task, ThreadRunner

from .decide import RUN, Decision
from .state import RunState

MODES = ("sequential", "thread", "parallel")


def _flag(value: Any) -> bool:
    """A runner param as Kedro's CLI passes it (a string) or as Python code does (a bool)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none", ""):
        return False
    raise ValueError(f"{value!r} is not true or false. Fix: --runner-params restore=false.")


class _Incremental:
    """The node loop of Kedro's ``AbstractRunner._run``, deciding each node before it runs."""

    _restore: bool = True
    _is_async: bool

    def _run(
        self,
        pipeline: Pipeline,
        catalog: Any,
        hook_manager: Any = None,
        run_id: str | None = None,
    ) -> None:
        runner: Any = self
        nodes = pipeline.nodes
        runner._validate_catalog(catalog)
        runner._validate_nodes(nodes)
        runner._set_manager_datasets(catalog)
        state = RunState.start(pipeline, catalog, run_id=run_id, restore=self._restore)
        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        pool = runner._get_executor(runner._get_required_workers_count(pipeline))
        done: set[Any] = set()

        def finish(node: Any, decision: Decision, *, ran: bool = True) -> None:
            done.add(node)
            runner._logger.info("Completed %d out of %d tasks", len(done), len(nodes))
            if ran or not decision.deferred:
                runner._release_datasets(node, catalog, load_counts, pipeline)
            # A deferred node keeps its inputs until the run ends: it may still have to run.

        def task(node: Any) -> Task:
            return Task(
                node=node,
                catalog=catalog,
                hook_manager=hook_manager,
                is_async=self._is_async,
                run_id=run_id,
            )

        try:
            if pool is None:
                for node in nodes:
                    decision = state.decide(node)
                    if decision.action != RUN and state.settle(node, decision):
                        finish(node, decision, ran=False)
                        continue
                    for producer, why in state.needed(node):
                        self._execute(task(producer), pipeline, done, catalog)
                        state.ran(producer, why)
                        runner._release_datasets(producer, catalog, load_counts, pipeline)
                    self._execute(task(node), pipeline, done, catalog)
                    state.ran(node, decision)
                    runner._logger.info("Completed node: %s", node.name)
                    finish(node, decision)
                return
            self._pooled(pool, pipeline, state, task, finish, done)
        finally:
            state.close()

    def _execute(self, one: Task, pipeline: Pipeline, done: set[Any], catalog: Any) -> None:
        try:
            one.execute()
        except Exception:
            runner: Any = self
            runner._suggest_resume_scenario(pipeline, done, catalog)
            raise

    def _pooled(
        self, pool: Any, pipeline: Pipeline, state: RunState, task: Any, finish: Any, done: set[Any]
    ) -> None:
        runner: Any = self
        deps = pipeline.node_dependencies
        todo = set(deps)
        running: dict[Future[Any], tuple[Any, Decision]] = {}

        def submit(executor: Any, node: Any) -> Future[Any]:
            one = task(node)
            if isinstance(executor, ProcessPoolExecutor):
                one.parallel = True
            return executor.submit(one)  # type: ignore[no-any-return]

        def result(future: Future[Any]) -> None:
            try:
                future.result()
            except Exception:
                runner._suggest_resume_scenario(pipeline, done, state.catalog)
                raise

        with pool as executor:
            while True:
                ready = {n for n in todo if deps[n] <= done}
                todo -= ready
                for node in sorted(ready, key=lambda n: n.name):
                    decision = state.decide(node)
                    if decision.action != RUN and state.settle(node, decision):
                        finish(node, decision, ran=False)
                        continue
                    # Deferred producers it needs run first, one after the other (rare:
                    # a node that runs after its in-memory inputs' producers were skipped).
                    for producer, why in state.needed(node):
                        result(submit(executor, producer))
                        state.ran(producer, why)
                    running[submit(executor, node)] = (node, decision)
                if ready and not running:
                    continue  # settled nodes may have made others ready
                if not running:
                    if todo:
                        runner._raise_runtime_error(todo, done, ready, None)
                    break
                finished, _ = wait(set(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    node, decision = running.pop(future)
                    result(future)
                    state.ran(node, decision)
                    runner._logger.info("Completed node: %s", node.name)
                    finish(node, decision)


class IncrementalRunner(_Incremental, SequentialRunner):
    """Run only the nodes whose results are not already in Dolt (see the README,
    "Incremental runs"). ``mode``: ``sequential`` (default), ``thread`` or ``parallel``."""

    def __new__(cls, *args: Any, mode: str = "sequential", **kwargs: Any) -> Any:
        if mode not in MODES:
            raise ValueError(
                f"IncrementalRunner mode {mode!r} is not one of {', '.join(MODES)}. "
                "Fix: --runner-params mode=sequential|thread|parallel."
            )
        if cls is IncrementalRunner and mode == "thread":
            return IncrementalThreadRunner(*args, **kwargs)
        if cls is IncrementalRunner and mode == "parallel":
            return IncrementalParallelRunner(*args, **kwargs)
        return super().__new__(cls)

    def __init__(
        self,
        is_async: Any = False,
        *,
        mode: str = "sequential",
        restore: Any = True,
        max_workers: Any = None,  # for a thread or parallel mode; one node at a time here
    ) -> None:
        super().__init__(is_async=_flag(is_async))
        self._restore = _flag(restore)


class IncrementalThreadRunner(_Incremental, ThreadRunner):
    """:class:`IncrementalRunner` with nodes in threads (``mode=thread``)."""

    def __init__(
        self, max_workers: Any = None, is_async: bool = False, *, restore: Any = True
    ) -> None:
        super().__init__(max_workers=_int(max_workers), is_async=_flag(is_async))
        self._restore = _flag(restore)


class IncrementalParallelRunner(_Incremental, ParallelRunner):
    """:class:`IncrementalRunner` with nodes in processes (``mode=parallel``)."""

    def __init__(
        self, max_workers: Any = None, is_async: bool = False, *, restore: Any = True
    ) -> None:
        super().__init__(max_workers=_int(max_workers), is_async=_flag(is_async))
        self._restore = _flag(restore)

    def _run(
        self, pipeline: Pipeline, catalog: Any, hook_manager: Any = None, run_id: str | None = None
    ) -> None:
        # As ParallelRunner: each worker process makes its own hook manager (it cannot be
        # pickled).
        _Incremental._run(self, pipeline, catalog, None, run_id)


def _int(value: Any) -> int | None:
    return None if value in (None, "", "None") else int(value)


__all__ = ["IncrementalParallelRunner", "IncrementalRunner", "IncrementalThreadRunner"]
