"""Action records (one per load and save of a Dolt dataset) and where they go.

A record is plain data, JSON-serialisable through ``to_dict()``. It reaches:

* every process-wide listener (:func:`subscribe`; the Kedro hook uses this for its log lines
  and run manifest);
* the dataset's own :class:`CallbackMeta`, which calls a function and/or keeps a lineage
  table inside the Dolt repository, committed with the data, so lineage travels with every
  clone and remote.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import DoltError
from ..naming import validate_table

logger = logging.getLogger(__name__)


@dataclass
class ActionRecord:
    """One load or save of a Dolt dataset."""

    kind: str  # "load" or "save"
    dataset: str | None
    database: str
    table: str
    branch: str | None
    ref: str | None  # what the load asked for (None: the strategy's default)
    from_commit: str | None
    to_commit: str | None
    rows: int
    strategy: str
    rows_added: int = 0
    rows_modified: int = 0
    rows_deleted: int = 0
    merge: dict[str, Any] | None = None
    pulled: dict[str, Any] | None = None
    pushed: bool = False
    tag: str | None = None
    base_branch: str | None = None  # the dataset's own branch under a run-level branch
    run_id: str | None = None
    pipeline: str | None = None
    node: str | None = None
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @property
    def committed(self) -> bool:
        return self.kind == "save" and self.from_commit != self.to_commit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionRecord:
        return cls(**dict(data))


Listener = Callable[[ActionRecord], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with every record from now on; returns the unsubscribe function."""
    _listeners.append(listener)

    def unsubscribe() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return unsubscribe


def emit(record: ActionRecord) -> None:
    for listener in list(_listeners):
        try:
            listener(record)
        except Exception:  # a broken listener must not fail the node that saved
            logger.exception("kedro-dolt metadata listener %r failed", listener)


_resolved: dict[str, Callable[[ActionRecord], Any]] = {}


def _import_callable(path: str) -> Callable[[ActionRecord], Any]:
    if path not in _resolved:
        module_name, sep, attr = path.partition(":")
        if not sep:
            module_name, _, attr = path.rpartition(".")
        try:
            target = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise DoltError(
                f"Cannot import the meta callback {path!r}: {exc}.",
                fix="give an importable function as 'package.module:function'.",
            ) from exc
        if not callable(target):
            raise DoltError(f"The meta callback {path!r} is not callable.")
        _resolved[path] = target
    return _resolved[path]


@dataclass(frozen=True)
class CallbackMeta:
    """Where a dataset's action records go besides the Kedro hook.

    ``fn``: a function called with each :class:`ActionRecord`, or its import path
    (``"pkg.mod:fn"``), imported lazily so the dataset stays picklable. ``table``: a lineage
    table in the dataset's Dolt repository that gets one row per changing save, in the same
    commit as the data.

    YAML: ``meta: {callback: "pkg.mod:fn", table: kedro_runs}`` or ``meta: pkg.mod.fn``.
    """

    fn: Callable[[ActionRecord], Any] | str | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        if self.table is not None:
            validate_table(self.table, key="meta table")
        if self.fn is not None and not (callable(self.fn) or isinstance(self.fn, str)):
            raise DoltError(
                f"Invalid meta callback {self.fn!r}.",
                fix="give a function or its import path 'package.module:function'.",
            )

    @classmethod
    def from_config(
        cls, value: CallbackMeta | Mapping[str, Any] | str | Callable[..., Any] | None
    ) -> CallbackMeta | None:
        if value is None or isinstance(value, CallbackMeta):
            return value
        if isinstance(value, str) or callable(value):
            return cls(fn=value)
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {"callback", "table"})
            if unknown:
                raise DoltError(
                    f"Unknown key(s) {unknown} in meta.",
                    fix="use callback and/or table, e.g. "
                    "meta: {callback: 'my_project.lineage:record', table: kedro_runs}.",
                )
            return cls(fn=value.get("callback"), table=value.get("table"))
        raise DoltError(
            f"Invalid meta {value!r}.",
            fix="give a mapping like {callback: 'pkg.mod:fn', table: kedro_runs}.",
        )

    def callback(self) -> Callable[[ActionRecord], Any] | None:
        """The function to call (imported on first use; raises ``DoltError`` if it cannot)."""
        if self.fn is None or callable(self.fn):
            return self.fn
        return _import_callable(self.fn)

    def describe(self) -> dict[str, Any]:
        fn = (
            self.fn
            if isinstance(self.fn, str) or self.fn is None
            else getattr(self.fn, "__qualname__", repr(self.fn))
        )
        return {"callback": fn, "table": self.table}
