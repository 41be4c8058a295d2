"""Whether a node runs, is skipped or has its outputs restored, and why.

The rules, in order (the README's "Incremental runs" section says the same):

1. a node tagged ``always_run`` runs;
2. a node runs when it has no outputs, or an output whose version cannot be established (a
   ``MemoryDataset``, a remote or versioned file, ...): skipping it would lose that output;
3. it runs when its code cannot be read, or an input's version cannot be established;
4. it runs when no memo matches its code, params and input versions (the reason names what
   changed against its latest memo: code, params, or an input ``old -> new``);
5. with a matching memo, it is skipped when every output still holds the version the memo
   recorded; when the matching memo is the node's latest, an output holding another version
   was changed outside the pipeline, and the node runs;
6. an older matching memo (an input was put back to an earlier version) restores the outputs
   from that run's commits instead of running, when every output is a Dolt table and restore
   is on; else the node runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .code import code_fingerprint
from .memo import MemoEntry, memo_key
from .versions import is_dolt, is_params, local_path, short

ALWAYS_RUN_TAG = "always_run"

SKIP, RESTORE, RUN = "skip", "restore", "run"

# name -> its version now (None: cannot be established)
VersionOf = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Decision:
    node: str
    action: str
    reason: str
    from_run: str | None = None
    entry: MemoEntry | None = None  # the memo a skip or restore follows
    code: str | None = None
    params: Mapping[str, str] | None = None
    inputs: Mapping[str, str] | None = None

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


def versionable(dataset: Any) -> bool:
    return is_dolt(dataset) or local_path(dataset) is not None


def decide(
    node: Any,
    *,
    catalog: Any,
    memos: Mapping[str, list[MemoEntry]],
    version_of: VersionOf,
    restore: bool,
) -> Decision:
    """The decision for ``node`` now (see the module docstring for the rules)."""
    name = node.name
    forced = _must_run(node, catalog)
    if forced is not None:
        return Decision(name, RUN, forced)
    code = code_fingerprint(node.func)
    if code is None:
        return Decision(name, RUN, "its code cannot be read")
    params: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for input_name in node.inputs:
        version = version_of(input_name)
        if version is None:
            return Decision(name, RUN, f"input {input_name!r} has no version to compare")
        (params if is_params(input_name) else inputs)[input_name] = version
    known: dict[str, Any] = {"code": code, "params": params, "inputs": inputs}
    entries = memos.get(name, [])
    if not entries:
        return Decision(name, RUN, "no memo", **known)
    key = memo_key(code, params, inputs)
    matching = [e for e in entries if e.key == key]
    if not matching:
        return Decision(name, RUN, _what_changed(entries[-1], code, params, inputs), **known)
    return _with_memo(node, matching[-1], entries[-1], known, catalog, version_of, restore)


def _with_memo(
    node: Any,
    entry: MemoEntry,
    latest: MemoEntry,
    known: dict[str, Any],
    catalog: Any,
    version_of: VersionOf,
    restore: bool,
) -> Decision:
    """``entry`` matches the node's code, params and inputs: skip, restore or run."""
    name = node.name
    moved: list[tuple[str, str | None, str | None]] = [
        (out, recorded.version, version_of(out))
        for out, recorded in entry.outputs.items()
        if version_of(out) != recorded.version
    ]
    moved += [(o, None, version_of(o)) for o in node.outputs if o not in entry.outputs]
    if not moved:
        return Decision(name, SKIP, f"fresh (memo of run {entry.run_id})", entry=entry, **known)
    if entry is latest or any(was is None for _, was, _ in moved):
        out, was, now = moved[0]
        edited = f"output {out!r} was changed outside the pipeline ({short(was)} -> {short(now)})"
        return Decision(name, RUN, edited, **known)
    why = _cannot_restore(node, catalog, entry, restore)
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


def _must_run(node: Any, catalog: Any) -> str | None:
    """Why ``node`` runs whatever its memo says, or None."""
    if ALWAYS_RUN_TAG in node.tags:
        return f"always-run (tag {ALWAYS_RUN_TAG})"
    if not node.outputs:
        return "no outputs (it runs for its side effects)"
    for output in node.outputs:
        dataset = catalog.get(output, fallback_to_runtime_pattern=True)
        if not versionable(dataset):
            return f"output {output!r} has no version to check ({type(dataset).__name__})"
    return None


def _cannot_restore(node: Any, catalog: Any, entry: MemoEntry, restore: bool) -> str | None:
    if not restore:
        return "restore is off"
    for name in node.outputs:
        if not is_dolt(catalog.get(name, fallback_to_runtime_pattern=True)):
            return f"output {name!r} is not a Dolt table"
        if not entry.outputs[name].commit:
            return f"no commit recorded for output {name!r}"
    return None


def _what_changed(
    latest: MemoEntry, code: str, params: Mapping[str, str], inputs: Mapping[str, str]
) -> str:
    if latest.code != code:
        return "code changed"
    for name in sorted(set(params) | set(latest.params)):
        if params.get(name) != latest.params.get(name):
            return f"params changed ({name})"
    for name in sorted(set(inputs) | set(latest.inputs)):
        if inputs.get(name) != latest.inputs.get(name):
            was, now = latest.inputs.get(name), inputs.get(name)
            return f"input {name!r} changed {short(was)} -> {short(now)}"
    return "no memo of these inputs"
