"""One incremental run's state: the memos it read, the decisions it made, the memos it adds."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kedro.io.core import DatasetError

from .. import context
from .decide import RESTORE, RUN, SKIP, Decision, decide
from .memo import MemoEntry, MemoStore, Output
from .versions import dataset_version, is_dolt, is_params, params_version, save_known

logger = logging.getLogger("kedro_dolt.incremental")
_NO_MARKUP = {"markup": False}


def memo_store(pipeline: Any, catalog: Any) -> MemoStore | None:
    """The repository most of the pipeline's Dolt datasets use (ties: the first by name)."""
    engines: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    for name in sorted(pipeline.datasets()):
        try:
            dataset = catalog.get(name, fallback_to_runtime_pattern=True)
        except DatasetError:
            continue
        if is_dolt(dataset):
            engines.setdefault(dataset.engine.location, dataset.engine)
            counts[dataset.engine.location] += 1
    if not counts:
        return None
    location = max(counts, key=lambda loc: (counts[loc], -sorted(counts).index(loc)))
    return MemoStore(engines[location])


@dataclass
class RunState:
    pipeline: Any
    catalog: Any
    run_id: str | None
    restore: bool
    store: MemoStore | None
    memos: dict[str, list[MemoEntry]]
    decisions: list[Decision] = field(default_factory=list)

    @classmethod
    def start(cls, pipeline: Any, catalog: Any, *, run_id: str | None, restore: bool) -> RunState:
        store = memo_store(pipeline, catalog)
        memos = store.read() if store is not None else {}
        return cls(pipeline, catalog, run_id, restore, store, memos)

    def version_of(self, name: str) -> str | None:
        if is_params(name):
            return params_version(self.catalog.load(name))
        return dataset_version(self.catalog.get(name, fallback_to_runtime_pattern=True))

    def decide(self, node: Any, version_of: Callable[[str], str | None] | None = None) -> Decision:
        if self.store is None:
            decision = Decision(node.name, RUN, "no Dolt repository to keep memos in")
        else:
            decision = decide(
                node,
                catalog=self.catalog,
                memos=self.memos,
                version_of=_cached(version_of or self.version_of),
                restore=self.restore,
            )
        self.decisions.append(decision)
        logger.info("kedro-dolt incremental: %s", decision.describe(), extra=_NO_MARKUP)
        return decision

    def ran(self, node: Any, decision: Decision) -> None:
        """After ``node`` ran: remember it, if its inputs stayed what was decided on."""
        if self.store is None or decision.code is None or decision.inputs is None:
            return
        now = {n: self.version_of(n) for n in node.inputs if not is_params(n)}
        if now != dict(decision.inputs):
            logger.warning(
                "kedro-dolt incremental: an input of node %s changed while it ran; "
                "no memo kept, it runs again next time",
                node.name,
            )
            return
        outputs = {}
        for name in node.outputs:
            output = self._output(name)
            if output is None:
                return
            outputs[name] = output
        self.store.add(
            MemoEntry(
                node=node.name,
                code=decision.code,
                params=dict(decision.params or {}),
                inputs=dict(decision.inputs),
                outputs=outputs,
                run_id=self.run_id or "-",
            )
        )

    def _output(self, name: str) -> Output | None:
        dataset = self.catalog.get(name, fallback_to_runtime_pattern=True)
        version = dataset_version(dataset)
        if version is None:
            return None
        try:
            return Output(version, dataset.head_commit() if is_dolt(dataset) else None)
        except DatasetError:
            return None  # no memo: the node runs next time

    def settle(self, node: Any, decision: Decision) -> bool:
        """A node that does not run: skipped as it is, or its outputs restored. False when a
        restore failed (the commit is not in this clone, ...): then the node must run."""
        if decision.action == SKIP:
            return True
        assert decision.action == RESTORE and decision.entry is not None
        context.set_node(node.name, self.run_id)
        context.set_restored_from(decision.entry.run_id)
        try:
            for name in node.outputs:
                dataset = self.catalog.get(name, fallback_to_runtime_pattern=True)
                context.set_dataset(name)
                commit = decision.entry.outputs[name].commit
                assert commit is not None  # decide() restores only outputs with a commit
                dataset.save(dataset.load_at(commit))
        except DatasetError as exc:
            logger.warning(
                "kedro-dolt incremental: restoring node %s failed (%s); running it instead",
                node.name,
                exc,
            )
            ran = dataclasses.replace(
                decision, action=RUN, reason=f"restore from run {decision.from_run} failed"
            )
            self.decisions[self.decisions.index(decision)] = ran
            return False
        finally:
            context.set_dataset(None)
            context.set_restored_from(None)
            context.set_node(None)
        self.ran(node, decision)
        return True

    def close(self) -> None:
        context.note_decisions([d.to_dict() for d in self.decisions])
        save_known()
        if self.store is None:
            return
        try:
            written = self.store.write(self.run_id)
        except DatasetError as exc:
            logger.warning("kedro-dolt incremental: node memos not saved (%s)", exc)
            return
        if written:
            logger.info(
                "kedro-dolt incremental: %d node memo(s) kept in %s@kedro-dolt-memo",
                written,
                context.display_path(self.store.location),
                extra=_NO_MARKUP,
            )


def _cached(version_of: Callable[[str], str | None]) -> Callable[[str], str | None]:
    known: dict[str, str | None] = {}

    def cached(name: str) -> str | None:
        if name not in known:
            known[name] = version_of(name)
        return known[name]

    return cached
