"""Action records: one per load and save of a Dolt dataset, delivered to listeners.

A record is plain data, JSON-serialisable through ``to_dict()``. Listeners (the Kedro hook,
``CallbackMeta`` callbacks) subscribe with :func:`subscribe`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class ActionRecord:
    kind: str  # "load" or "save"
    dataset: str | None
    database: str
    table: str
    branch: str | None
    ref: str | None
    from_commit: str | None
    to_commit: str | None
    rows: int
    strategy: str
    merge: dict[str, Any] | None = None
    pulled: dict[str, Any] | None = None
    pushed: bool = False
    tag: str | None = None
    run_id: str | None = None
    pipeline: str | None = None
    node: str | None = None
    timestamp: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @property
    def committed(self) -> bool:
        return self.kind == "save" and self.from_commit != self.to_commit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Listener = Callable[[ActionRecord], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with every record from now on; returns the unsubscribe function."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def emit(record: ActionRecord) -> None:
    for listener in list(_listeners):
        try:
            listener(record)
        except Exception:  # a broken listener must not fail the node that saved
            logger.exception("kedro-dolt metadata listener %r failed", listener)
