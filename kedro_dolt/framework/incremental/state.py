"""One incremental run's state: the memos it read, the decisions it made, the memos it adds,
and the nodes it deferred (in-memory outputs made only when a node that runs needs them)."""

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
from .outputs import MEMORY, output_kind, record, restore
from .trust import untrusted
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


def _pull_first(pipeline: Any, catalog: Any) -> None:
    """Pull every input that pulls from a remote before anything is decided: a pull moves
    the local branch, which other datasets on the same table read too."""
    for name in sorted(pipeline.datasets()):
        try:
            dataset = catalog.get(name, fallback_to_runtime_pattern=True)
            if is_dolt(dataset) and dataset.pulls:
                dataset.table_version(pull=True)
        except DatasetError:
            continue  # the node that loads it fails with the pull's own message


@dataclass
class RunState:
    pipeline: Any
    catalog: Any
    run_id: str | None
    restore: bool
    store: MemoStore | None
    memos: dict[str, list[MemoEntry]]
    decisions: list[Decision] = field(default_factory=list)
    memory_versions: dict[str, str | None] = field(default_factory=dict)
    deferred: dict[str, tuple[Any, Decision]] = field(default_factory=dict)
    _trust: dict[tuple[str, str], str | None] = field(default_factory=dict)
    # The run's free outputs: Pipeline.outputs() walks every node, so once per run.
    free_outputs: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, pipeline: Any, catalog: Any, *, run_id: str | None, restore: bool) -> RunState:
        _pull_first(pipeline, catalog)
        store = memo_store(pipeline, catalog)
        memos = store.read() if store is not None else {}
        state = cls(pipeline, catalog, run_id, restore, store, memos)
        state.free_outputs = set(pipeline.outputs())
        return state

    def dataset(self, name: str) -> Any:
        return self.catalog.get(name, fallback_to_runtime_pattern=True)

    def version_of(self, name: str) -> str | None:
        if is_params(name):
            return params_version(self.catalog.load(name))
        dataset = self.dataset(name)
        if output_kind(dataset) == MEMORY:
            return self.memory_versions.get(name)  # from its producer's decision
        return dataset_version(dataset)

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
                free_outputs=self.free_outputs,
                trust=self.trusted,
            )
        for name in node.outputs:
            if output_kind(self.dataset(name)) == MEMORY:
                self.memory_versions[name] = decision.memory_version(name)
        if decision.deferred:
            self.deferred[node.name] = (node, decision)
        self.decisions.append(decision)
        logger.info("kedro-dolt incremental: %s", decision.describe(), extra=_NO_MARKUP)
        return decision

    def trusted(self, node: Any, entry: MemoEntry) -> str | None:
        """None when ``entry`` verifies, else why not (remembered for the run)."""
        key = (node.name, entry.key)
        if key not in self._trust:
            self._trust[key] = untrusted(node, entry, self.dataset)
        return self._trust[key]

    def needed(self, node: Any) -> list[tuple[Any, Decision]]:
        """The deferred nodes that must run before ``node`` (which runs) can: the producers
        of its in-memory inputs, theirs first. Each is taken out of the deferred ones and
        its decision becomes "run"."""
        found: list[tuple[Any, Decision]] = []
        for name in node.inputs:
            producer = self._deferred_producer(name)
            if producer is None:
                continue
            deferred, decision = self.deferred.pop(producer.name)
            found += self.needed(deferred)
            ran = dataclasses.replace(
                decision,
                action=RUN,
                deferred=False,
                reason=f"its in-memory output {name!r} is needed by node {node.name}, which runs",
            )
            self.decisions[self.decisions.index(decision)] = ran
            logger.info("kedro-dolt incremental: %s", ran.describe(), extra=_NO_MARKUP)
            found.append((deferred, ran))
        return found

    def _deferred_producer(self, name: str) -> Any | None:
        for producer, _ in self.deferred.values():
            if name in producer.outputs:
                return producer
        return None

    def ran(self, node: Any, decision: Decision) -> None:
        """After ``node`` ran: remember it, if its inputs stayed what was decided on."""
        if self.store is None or decision.key is None or decision.inputs is None:
            return
        now = {n: self.version_of(n) for n in node.inputs if not is_params(n)}
        if now != dict(decision.inputs):
            logger.warning(
                "kedro-dolt incremental: an input of node %s changed while it ran; "
                "no memo kept, it runs again next time",
                node.name,
            )
            return
        outputs: dict[str, Output] = {}
        for name in node.outputs:
            output = record(self.dataset(name), decision.memory_version(name))
            if output is None:
                return  # no memo: the node runs next time
            outputs[name] = output
        assert decision.code is not None and decision.signature is not None
        self.store.add(
            MemoEntry(
                node=node.name,
                code=decision.code,
                signature=decision.signature,
                params=dict(decision.params or {}),
                inputs=dict(decision.inputs),
                outputs=outputs,
                run_id=self.run_id or "-",
            )
        )

    def settle(self, node: Any, decision: Decision) -> bool:
        """A node that does not run: skipped as it is, or its persistent outputs restored.
        False when a restore failed or did not give back the recorded version (the commit is
        not in this clone, a kept copy is gone, ...): then the node must run."""
        if decision.action == SKIP:
            return True
        assert decision.action == RESTORE and decision.entry is not None
        context.set_node(node.name, self.run_id)
        context.set_restored_from(decision.entry.run_id)
        try:
            for name in node.outputs:
                dataset = self.dataset(name)
                if output_kind(dataset) == MEMORY:
                    continue
                if not restore(name, dataset, decision.entry.outputs[name]):
                    raise DatasetError(f"output {name!r} did not get the recorded version back")
        except (DatasetError, OSError) as exc:
            logger.warning(
                "kedro-dolt incremental: restoring node %s failed (%s); running it instead",
                node.name,
                exc,
            )
            ran = dataclasses.replace(
                decision,
                action=RUN,
                deferred=False,
                reason=f"restore from run {decision.from_run} failed",
            )
            self.decisions[self.decisions.index(decision)] = ran
            self.deferred.pop(node.name, None)
            return False
        finally:
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
