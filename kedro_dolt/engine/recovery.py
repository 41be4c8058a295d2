"""What a failed save or merge script left, and the debris of crashed ones.

A save or merge script (:mod:`.sql.saves`, :mod:`.sql.merges`) works on a private scratch
branch and fast-forwards its target last. When it fails, :meth:`Recovery.after_failed_script`
removes the scratch branch and finds out, from the head before and now, whether the target
moved (the script had done its work), another writer moved it (try again), or nothing changed
(say so). A fast-forward resets the staged set: :meth:`Recovery.restage` stages the user's
staged tables again. Scratch branches of dead processes are removed when found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ..errors import DoltCommandError, DoltError
from . import scratch
from .messages import explain
from .retry import is_transient, with_retries
from .sql import repository as sql_repository
from .sql import saves as sql_saves
from .transport import Rows, Transport


class Recovery:
    """Clean-up after scripts on one transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _where(self, target: str | None) -> str:
        branch = f"branch {target!r}" if target else "the checked-out branch"
        return f"{branch} of {self.transport.location}"

    def after_failed_script(
        self,
        action: str,
        target: str | None,
        scratch_name: str,
        exc: DoltCommandError,
        *,
        merges: int = 1,
    ) -> tuple[str, str]:
        """Remove the scratch branch of a failed save or merge script and find out what
        happened: ``(head before, head now)`` when the target was fast-forwarded (the
        script's ``merges``-th merge) before a later statement failed; otherwise raise,
        saying "nothing was changed" only when the target's head is where it was. When
        another writer moved the target first, a transient error says to try again."""
        ran = exc.results
        before = ran[0][0]["from_commit"] if ran and ran[0] else None
        done = sum("fast_forward" in r for rows in ran for r in rows)
        now = self.discard_scratch(scratch_name, target)
        where = self._where(target)
        if before is not None and now is None:
            raise DoltError(
                f"Cannot {action} on {where}, and its head could not be read afterwards to "
                "check what changed.",
                fix=explain(exc.dolt_message, "check `dolt status` and `dolt log`."),
                dolt_message=exc.dolt_message,
            ) from exc
        if before is not None and now is not None and now != before:
            if done >= merges:
                return str(before), str(now)  # done; only a statement after it failed
            # Another writer committed to the target first; ours landed nowhere.
            raise DoltCommandError(
                exc.args_run,
                exc.returncode,
                f"{exc.dolt_message}\n(the head moved from {before} to {now} meanwhile)",
                transient=True,
                what=f"Cannot {action} on {where}: another writer committed to it first, "
                "each time it was tried; nothing was changed.",
            ) from exc
        if is_transient(exc):
            raise exc  # nothing changed: with_retries tries again
        raise DoltError(
            f"Cannot {action} on {where}; nothing was changed.",
            fix=explain(exc.dolt_message),
            dolt_message=exc.dolt_message,
        ) from exc

    def discard_scratch(self, scratch_name: str, target: str | None) -> str | None:
        """Delete a failed script's scratch branch; the target's head now (``None``: unknown)."""

        script = sql_saves.discard_scratch(scratch_name)
        try:
            results = with_retries(lambda: self.transport.run(script, branch=target))
        except DoltCommandError as exc:
            results = exc.results  # no scratch branch (the script failed before making it)
        return str(results[0][0]["h"]) if results and results[0] else None

    def restage(self, status: Rows, branch: str | None) -> None:
        """Stage again what the user had staged: a fast-forward resets the staged set.

        A fast-forward fails when it would touch a table with uncommitted changes, so every
        table in ``status`` is one the save left alone. Only tables whose whole change was
        staged are re-added (re-adding a table with further unstaged edits would stage those
        too); names Dolt would read as options are left alone.
        """
        staged = {r["table_name"] for r in status if r.get("staged")}
        unstaged = {r["table_name"] for r in status if not r.get("staged")}
        again = sorted(t for t in staged - unstaged if not t.startswith("-"))
        if again:
            self._quietly(sql_saves.stage(again), branch)

    def remove_stale_branches(self, names: Sequence[str]) -> None:
        """Delete scratch branches of dead kedro-dolt processes, and this process's own that
        no operation uses any more (crash debris)."""
        for name in scratch.stale_branches(names):
            self._quietly(sql_repository.delete_branch(name), None)

    def _quietly(self, script: list[str], branch: str | None) -> None:
        """Run a clean-up ``script``; if it fails, the debris waits for the next operation."""
        with contextlib.suppress(DoltCommandError):
            with_retries(lambda: self.transport.run(script, branch=branch))

    def clear_debris(self, branches: Sequence[str]) -> None:
        """After a read: remove what crashed saves left (only when there is any)."""
        scratch.remove_stale_temp_dirs()
        if scratch.stale_branches(branches):
            with self.transport.lock(exclusive=True):
                self.remove_stale_branches(branches)
