"""A save, as one straight line: check the frame, plan the write, run it, keep its fingerprint.

(:mod:`.saving` runs the scripts this module plans.)

* :func:`~.validate.stored` makes the frame what Dolt will store and refuses what it would not
  store as given; every plan writes that frame.
* The plan is a value: :class:`Unchanged` (the head holds exactly these rows),
  :class:`FullWrite` or :class:`DeltaWrite` (only the changed rows, against a known version of
  the table).
* The write runs as one guarded script on a scratch branch (:func:`.statements.save_script`).
  Its guard answers in a result set: :class:`Stopped` says the table had uncommitted changes
  (refused) or was not the planned version (a delta becomes a full write). No message text is
  ever matched to decide.
* A fingerprint is kept only for the table hash it describes: a full overwrite's is the
  frame's; an append's or upsert's is derived from the old one only when the save built on
  exactly that version. Keeping it is bookkeeping after the commit: it never fails the save.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import DoltError
from . import load_cache
from .codec import dolt_form
from .fingerprint import Delta, Fingerprint, FingerprintStore, delta
from .known_versions import known_versions
from .results import CommitResult, DiffStat
from .retry import still
from .schema import TableSchema
from .sql import saves as sql
from .transport import Statement
from .validate import conform, stored

if TYPE_CHECKING:
    from .saving import SaveOps

logger = logging.getLogger(__name__)

#: Saves tried while the table keeps looking changed for a moment only (see ``_attempt``).
DIRTY_ATTEMPTS = 5

#: A fingerprint and the table hash it describes.
Known = tuple[str, Fingerprint]


@dataclass(frozen=True)
class Unchanged:
    """The head's table holds exactly the frame's rows: nothing is written."""

    head: str
    branch: str
    table_hash: str | None = None


@dataclass(frozen=True)
class FullWrite:
    """Every row is written: the table becomes the frame (overwrite) or gains its rows."""

    derived_from: Known | None = None  # append/upsert: the table's fingerprint, if known


@dataclass(frozen=True)
class DeltaWrite:
    """Only the changed rows are written, onto the version of the table ``base`` names."""

    change: Delta
    base: Known


SavePlan = Unchanged | FullWrite | DeltaWrite


@dataclass(frozen=True)
class Stopped:
    """The script's guard stopped it before it wrote anything."""

    dirty: bool  # the table has uncommitted changes on the target branch
    base_hash: str | None  # the table's hash at the target's head (None: no such table)


class TableSave:
    """One ``write_table`` call: the frame, where it goes, and the engine that writes it."""

    def __init__(
        self,
        engine: SaveOps,
        table: str,
        frame: pd.DataFrame,
        schema: TableSchema,
        *,
        target: str | None,
        mode: str,
        finish: list[str],
    ) -> None:
        self.engine, self.table, self.target, self.mode = engine, table, target, mode
        self.schema = schema
        self.frame = stored(frame, schema, negative_zero=engine.transport.keeps_negative_zero)
        self.finish = finish
        self.store = FingerprintStore(engine.transport.cache_dir)

    @property
    def ddl(self) -> str:
        return self.schema.ddl(self.table)

    # -- the line ---------------------------------------------------------------------------

    def run(self) -> CommitResult:
        latest = self.store.latest(self.table)
        if self.mode == "overwrite" and latest is None:
            # Nothing to compare the rows with: hash them while Dolt loads them.
            with Fingerprint.hashing(self.frame, self.schema, self.ddl) as hashed:
                result = self._write(self._full_body(), expected=None)
            self._keep(result, lambda: hashed.fingerprint)
            self._cache(result.table_hash, result.to_commit)
            return result
        fingerprint = Fingerprint.of(self.frame, self.schema, self.ddl)
        plan = self.plan(latest, fingerprint)
        if isinstance(plan, Unchanged):
            self._cache(plan.table_hash, None)
            return CommitResult(plan.branch, plan.head, plan.head, DiffStat())
        if isinstance(plan, DeltaWrite):
            body = sql.delta_body(self.table, self.frame, self.schema, plan.change)
            outcome = self._attempt(body, expected=plan.base[0])
            if isinstance(outcome, CommitResult):
                self._keep(outcome, lambda: fingerprint)
                self._cache(outcome.table_hash, outcome.to_commit)
                return outcome
            plan = FullWrite()  # the table is not the version planned against: write it all
        result = self._write(self._full_body(), expected=None)
        self._keep(result, lambda: self._fingerprint_after(result, plan, fingerprint))
        if self.mode == "overwrite":
            self._cache(result.table_hash, result.to_commit)
        return result

    def plan(self, latest: Known | None, fingerprint: Fingerprint) -> SavePlan:
        """What to write. Modes and an overwrite that looks unchanged read the table's base
        (its hash, schema and whether it has uncommitted changes); other overwrites plan a
        delta against the newest fingerprint, which the script's guard then checks."""
        old: Known | None = latest
        if self.mode != "overwrite" or (latest and latest[1].same_rows(fingerprint)):
            base = self.engine.base(self.table, self.target)
            found = self._fingerprint_of(base.table_hash, latest)
            old = (str(base.table_hash), found) if found else None
            if self.mode != "overwrite":
                if base.schema is not None:
                    self.frame, self.schema = conform(
                        self.frame, self.schema, self.table, base.schema, self.mode
                    )
                return FullWrite(derived_from=old)
            if found is not None and found.same_rows(fingerprint):
                if (
                    base.dirty and self._dirty()
                ):  # committed rows are the frame's; the working set's not
                    raise self._uncommitted()
                return Unchanged(base.head, base.branch, base.table_hash)
        change = delta(old[1], fingerprint) if old else None
        return DeltaWrite(change, old) if change is not None and old else FullWrite()

    def _fingerprint_of(self, table_hash: str | None, latest: Known | None) -> Fingerprint | None:
        """The stored fingerprint of the table version ``table_hash`` (``latest``'s when it
        is that version: read already)."""
        if latest is not None and latest[0] == table_hash:
            return latest[1]
        return self.store.load(self.table, table_hash)

    # -- writing ----------------------------------------------------------------------------

    def _full_body(self) -> list[Statement]:
        return sql.full_body(self.table, self.schema, self.frame, self.mode)

    def _write(self, body: list[Statement], *, expected: str | None) -> CommitResult:
        outcome = self._attempt(body, expected=expected)
        if isinstance(outcome, Stopped):  # without an expected base only a dirty table stops
            raise self._uncommitted()
        return outcome

    def _attempt(self, body: list[Statement], *, expected: str | None) -> CommitResult | Stopped:
        """Run the script; a table found with uncommitted changes is looked at again
        (:func:`~.retry.still`) before the save refuses."""
        for _ in range(DIRTY_ATTEMPTS):
            outcome = self.engine.save_on_scratch(
                self.table, self.schema, self.target, body, self.finish, expected=expected
            )
            if not (isinstance(outcome, Stopped) and outcome.dirty):
                return outcome
            if still(self._dirty):
                break
        raise self._uncommitted()

    def _dirty(self) -> bool:
        return self.engine.base(self.table, self.target).dirty

    def _uncommitted(self) -> DoltError:
        where = f"branch {self.target!r}" if self.target else "the checked-out branch"
        return DoltError(
            f"Cannot save table {self.table!r} on {where} of {self.engine.location}: the "
            "table has uncommitted changes there, which a save does not overwrite; "
            "nothing was changed.",
            fix="commit them (`dolt add <table>; dolt commit -m ...`) or discard them "
            "(`dolt checkout <table>`), then save again.",
        )

    # -- fingerprints -----------------------------------------------------------------------

    def _fingerprint_after(
        self, result: CommitResult, plan: SavePlan, fingerprint: Fingerprint
    ) -> Fingerprint | None:
        """The fingerprint of the table a full write left, when it is known exactly."""
        if self.mode == "overwrite":
            return fingerprint
        old = plan.derived_from if isinstance(plan, FullWrite) else None
        if old is None or result.base_table_hash != old[0]:
            return None  # the save built on a version this process has not fingerprinted
        # The frame's own fingerprint: hashes and keys are positional, the names do not count.
        added = fingerprint
        return old[1].extended(added) if self.mode == "append" else old[1].upserted(added)

    def _cache(self, table_hash: str | None, commit: str | None) -> None:
        """Put the frame an overwrite left in the table (version ``table_hash``, in
        ``commit`` when known) in the load cache, where a server will be asked for it next.
        After the commit: never raises."""
        cache = load_cache.shared()
        if not (table_hash and cache.enabled and self.engine.transport.cheap_round_trips):
            return
        try:
            if commit:  # the script read the hash on the commit's own root
                known_versions.put(
                    self.engine.location, commit, self.table, table_hash, self.schema
                )
            key = load_cache.CacheKey(table_hash, self.schema)
            if cache.has(key):  # e.g. an unchanged save of what was loaded: kept already
                return
            rows = dolt_form(self.frame, self.schema)
            if rows is not None:
                cache.put(key, rows)
        except Exception:  # the cache only saves time; the data is committed
            logger.debug("kedro-dolt could not cache the saved %s", self.table)

    def _keep(self, result: CommitResult, fingerprint: Callable[[], Fingerprint | None]) -> None:
        """Keep the fingerprint of the table as it now is. After the commit: never raises."""
        if not result.table_hash:
            return
        try:
            found = fingerprint()
            if found is not None:
                self.store.save(self.table, result.table_hash, found)
        except Exception:  # a fingerprint only saves time; the data is committed
            logger.debug("kedro-dolt could not keep the fingerprint of %s", self.table)
