"""Whether a node runs, is skipped or has its outputs restored, and why.

The rules, in order (the README's "Incremental runs" section says the same):

1. a node tagged ``always_run`` runs; so does a node without outputs, a node with an output
   whose version cannot be established (a remote file, an API, ...) and a node with an
   in-memory output that is an output of the run (the user could see it);
2. it runs when its code cannot be fingerprinted reliably, or an input's version cannot be
   established (both with the reason);
3. it runs when no trusted memo matches its code, signature, params and input versions (the
   reason names what changed against its latest memo);
4. with a matching memo, it is skipped when every persistent output still holds the version
   the memo recorded; when the matching memo is the node's latest, an output holding another
   version was changed outside the pipeline, and the node runs;
5. an older matching memo (an input was put back to an earlier version) restores the outputs
   from that run's commits, saved file versions or kept copies instead of running, when every
   persistent output can be restored and restore is on; else the node runs.

In-memory outputs have no content to check: their version is how they are made (the node's
memo key). A node that would otherwise be skipped or restored but has in-memory outputs is
*deferred*: it runs only if a node that runs needs one of those outputs (:mod:`.state`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .canonical import NotStable, stable_digest
from .code import code_fingerprint_why
from .memo import MemoEntry, memo_key
from .outputs import cannot_restore, output_kind
from .versions import is_params, short

ALWAYS_RUN_TAG = "always_run"

SKIP, RESTORE, RUN = "skip", "restore", "run"

# name -> its version now (None: cannot be established)
VersionOf = Callable[[str], "str | None"]
# an entry that matches -> None when it is trusted, else why not
Trust = Callable[[Any, MemoEntry], "str | None"]


@dataclass(frozen=True)
class Decision:
    node: str
    action: str
    reason: str
    from_run: str | None = None
    entry: MemoEntry | None = None  # the memo a skip or restore follows
    code: str | None = None
    signature: str | None = None
    params: Mapping[str, str] | None = None
    inputs: Mapping[str, str] | None = None
    deferred: bool = False  # in-memory outputs: made only if a node that runs needs them

    @property
    def key(self) -> str | None:
        if self.code is None or self.signature is None or self.inputs is None:
            return None
        return memo_key(self.code, self.signature, dict(self.params or {}), dict(self.inputs))

    def memory_version(self, output: str) -> str | None:
        """The version of in-memory ``output`` of this node: how it is made."""
        key = self.key
        if key is None:
            return None
        return "mem:" + hashlib.sha256(f"{key}\0{output}".encode()).hexdigest()

    def describe(self) -> str:
        if self.action == SKIP:
            return f"skip {self.node}: {self.reason}"
        if self.action == RESTORE:
            return f"restore {self.node} from run {self.from_run}: {self.reason}"
        return f"run {self.node}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "action": self.action,
            "reason": self.reason,
            "from_run": self.from_run,
        }


def signature(node: Any) -> str:
    """The node's inputs and outputs as it declares them: which position (or keyword) gets
    which dataset. Swapped inputs or outputs are another node."""
    inputs = getattr(node, "_inputs", node.inputs)
    outputs = getattr(node, "_outputs", node.outputs)
    try:
        return stable_digest([inputs, outputs])
    except NotStable:  # declarations are strings, lists and dicts of strings
        return stable_digest([list(node.inputs), list(node.outputs)])


def decide(
    node: Any,
    *,
    catalog: Any,
    memos: Mapping[str, list[MemoEntry]],
    version_of: VersionOf,
    restore: bool,
    free_outputs: Collection[str] = (),
    trust: Trust | None = None,
) -> Decision:
    """The decision for ``node`` now (see the module docstring for the rules)."""
    name = node.name
    kinds = {o: output_kind(catalog.get(o, fallback_to_runtime_pattern=True)) for o in node.outputs}
    forced = _must_run(node, kinds, free_outputs)
    if forced is not None:
        return Decision(name, RUN, forced)
    code, why = code_fingerprint_why(node.func)
    if code is None:
        return Decision(name, RUN, f"its code cannot be fingerprinted ({why})")
    params: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for input_name in node.inputs:
        version = version_of(input_name)
        if version is None:
            return Decision(name, RUN, f"input {input_name!r} has no version to compare")
        (params if is_params(input_name) else inputs)[input_name] = version
    known: dict[str, Any] = {
        "code": code,
        "signature": signature(node),
        "params": params,
        "inputs": inputs,
    }
    memory = [o for o in node.outputs if kinds[o] == "memory"]
    persistent = [o for o in node.outputs if kinds[o] != "memory"]
    if not persistent:
        return Decision(name, SKIP, _DEFERRED, deferred=True, **known)
    decision = _by_memo(node, persistent, known, memos, catalog, version_of, restore, trust)
    if memory and decision.action != RUN:
        return Decision(**{**decision.__dict__, "deferred": True})
    return decision


_DEFERRED = "its in-memory outputs are made only if a node that runs needs them"


def _by_memo(
    node: Any,
    persistent: list[str],
    known: dict[str, Any],
    memos: Mapping[str, list[MemoEntry]],
    catalog: Any,
    version_of: VersionOf,
    restore: bool,
    trust: Trust | None,
) -> Decision:
    name = node.name
    entries = memos.get(name, [])
    if not entries:
        return Decision(name, RUN, "no memo", **known)
    key = memo_key(known["code"], known["signature"], known["params"], known["inputs"])
    matching = [e for e in entries if e.key == key]
    if not matching:
        return Decision(name, RUN, _what_changed(entries[-1], known), **known)
    entry = matching[-1]
    untrusted = trust(node, entry) if trust is not None else None
    if untrusted is not None:
        return Decision(
            name, RUN, f"its memo of run {entry.run_id} is not trusted ({untrusted})", **known
        )
    return _with_memo(node, persistent, entry, entries[-1], known, catalog, version_of, restore)


def _with_memo(
    node: Any,
    persistent: list[str],
    entry: MemoEntry,
    latest: MemoEntry,
    known: dict[str, Any],
    catalog: Any,
    version_of: VersionOf,
    restore: bool,
) -> Decision:
    """``entry`` matches the node's code, params and inputs: skip, restore or run."""
    name = node.name
    moved: list[tuple[str, str | None, str | None]] = []
    for out in persistent:
        recorded = entry.outputs.get(out)
        now = version_of(out)
        if recorded is None or now != recorded.version:
            moved.append((out, recorded.version if recorded else None, now))
    if not moved:
        return Decision(name, SKIP, f"fresh (memo of run {entry.run_id})", entry=entry, **known)
    if entry is latest or any(was is None for _, was, _ in moved):
        out, was, now = moved[0]
        edited = f"output {out!r} was changed outside the pipeline ({short(was)} -> {short(now)})"
        return Decision(name, RUN, edited, **known)
    why = _cannot_restore(persistent, catalog, entry, restore)
    if why is None:
        return Decision(
            name,
            RESTORE,
            "its code, params and inputs match that run's",
            from_run=entry.run_id,
            entry=entry,
            **known,
        )
    return Decision(
        name, RUN, f"inputs match run {entry.run_id}, whose outputs were replaced ({why})", **known
    )


def _must_run(node: Any, kinds: Mapping[str, str | None], free: Collection[str]) -> str | None:
    """Why ``node`` runs whatever its memo says, or None."""
    if ALWAYS_RUN_TAG in node.tags:
        return f"always-run (tag {ALWAYS_RUN_TAG})"
    if not node.outputs:
        return "no outputs (it runs for its side effects)"
    for output, kind in kinds.items():
        if kind is None:
            return f"output {output!r} has no version to check"
        if kind == "memory" and output in free:
            return f"its in-memory output {output!r} is an output of the run"
    return None


def _cannot_restore(
    persistent: list[str], catalog: Any, entry: MemoEntry, restore: bool
) -> str | None:
    if not restore:
        return "restore is off"
    for name in persistent:
        dataset = catalog.get(name, fallback_to_runtime_pattern=True)
        why = cannot_restore(dataset, entry.outputs[name])
        if why is not None:
            return f"output {name!r}: {why}"
    return None


def _what_changed(latest: MemoEntry, known: Mapping[str, Any]) -> str:
    if latest.code != known["code"]:
        return "code changed"
    if latest.signature != known["signature"]:
        return "its inputs or outputs were declared otherwise (names or order)"
    params, inputs = known["params"], known["inputs"]
    for name in sorted(set(params) | set(latest.params)):
        if params.get(name) != latest.params.get(name):
            return f"params changed ({name})"
    for name in sorted(set(inputs) | set(latest.inputs)):
        if inputs.get(name) != latest.inputs.get(name):
            was, now = latest.inputs.get(name), inputs.get(name)
            if was and now and short(was) == short(now):
                return f"input {name!r} is read with another configuration (catalog entry)"
            return f"input {name!r} changed {short(was)} -> {short(now)}"
    return "no memo of these inputs"
