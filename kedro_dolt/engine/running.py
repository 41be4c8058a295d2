"""The base of the engine: one transport, and scripts run on it under the right lock, with the
retry policy and Dolt's errors turned into ``DoltError`` with a fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .messages import translated
from .recovery import Recovery
from .retry import with_retries
from .transport import Rows, Statement, Transport


class ScriptRunner:
    """Runs the engine's scripts on ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.recovery = Recovery(transport)

    @property
    def location(self) -> str:
        return self.transport.location

    def _read(
        self, script: Sequence[Statement], *, branch: str | None = None, what: str
    ) -> list[Rows]:
        """A script that changes nothing, under the shared lock; retried when Dolt was busy."""
        self.transport.require()
        with self.transport.lock(exclusive=False), translated(what):
            return with_retries(lambda: self.transport.run(script, branch=branch))

    def _write(
        self,
        script: Sequence[Statement],
        *,
        what: str,
        branch: str | None = None,
        fix: str = "",
        env: Mapping[str, str] | None = None,
    ) -> list[Rows]:
        """A script whose every statement may run again (it changed nothing when it failed
        with a transient error), under the exclusive lock; retried when Dolt was busy."""
        self.transport.require()
        with self.transport.lock(exclusive=True), translated(what, fix):
            return with_retries(lambda: self.transport.run(script, branch=branch, env=env))
