"""``SQLEngine``: every :class:`~.protocol.DoltEngine` operation, written once as SQL scripts
over one transport.

Design notes (see docs/dolt-facts.md and docs/architecture.md):

* Reads never use the working set or the checked-out branch: a ref is resolved to a commit
  hash and the table is read ``AS OF`` that hash, so loading never moves HEAD and sees
  committed data only (:mod:`.reading`).
* A save or merge runs as one script on a private scratch branch that the target is then
  fast-forwarded to (:mod:`.saving`, :mod:`.merging`): one engine start, one commit at most,
  readers never see a half-written table, and a failed save leaves the target as it was
  (:mod:`.recovery`).
* Writes hold the transport's exclusive lock (a file lock for the CLI; the server orders
  concurrent writers itself, and a writer that loses the race retries on a new scratch branch).

The operations are grouped by job, one module each: :mod:`.repository` (branches, tags, log),
:mod:`.merging`, :mod:`.remotes`, :mod:`.reading` and :mod:`.saving`, on the common
:mod:`.running` base.
"""

from __future__ import annotations

from .reading import ReadOps
from .saving import SaveOps


class SQLEngine(SaveOps, ReadOps):
    """Every :class:`~.protocol.DoltEngine` operation as SQL scripts over one transport."""


__all__ = ["SQLEngine"]
