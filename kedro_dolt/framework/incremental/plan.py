"""What an incremental run would do, node by node, without running anything.

The plan follows the run's rules (:mod:`.decide`) with one difference: it cannot know what a
node that runs will write, so its consumers are planned to run ("input X is written by node Y
first"); at run time they are skipped if Y writes the versions they last read (early cutoff).
A restored output is planned at the version it will be restored to.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .decide import RESTORE, RUN, Decision
from .state import RunState


def plan(pipeline: Any, catalog: Any, *, restore: bool = True) -> list[Decision]:
    """The decision for every node of ``pipeline``, in the order the run would take them."""
    state = RunState.start(pipeline, catalog, run_id=None, restore=restore)
    planned: dict[str, str | None] = {}  # a dataset's version once the nodes before ran
    writer: dict[str, str] = {}  # a dataset a running node writes -> that node

    def version_of(name: str) -> str | None:
        if name in state.memory_versions:
            return state.memory_versions[name]  # known before its producer runs
        if name in writer:
            return None
        if name in planned:
            return planned[name]
        return state.version_of(name)

    for node in pipeline.nodes:
        decision = state.decide(node, version_of)
        pending = [i for i in node.inputs if i in writer]
        if decision.action == RUN and pending and decision.reason.startswith("input "):
            first = pending[0]
            explained = dataclasses.replace(
                decision,
                reason=f"input {first!r} is written by node {writer[first]} first "
                "(skipped at run time if that writes the version it last read)",
            )
            state.decisions[state.decisions.index(decision)] = explained
        if decision.action == RUN:
            for producer, _ in state.needed(node):
                writer.update({o: producer.name for o in producer.outputs})
            writer.update({o: node.name for o in node.outputs})
        elif decision.action == RESTORE and decision.entry is not None:
            planned.update({o: decision.entry.outputs[o].version for o in node.outputs})
    return list(state.decisions)
