"""The repository: whether it exists, its branches, tags and log."""

from __future__ import annotations

from ..errors import DoltError
from ..naming import parse_time_ref, validate_branch, validate_ref
from .commits import parse_trailers
from .results import LogEntry, RepositoryState
from .running import ScriptRunner
from .sql import repository as sql


class RepositoryOps(ScriptRunner):
    """:class:`~.protocol.DoltEngine`'s repository operations."""

    def exists(self) -> bool:
        return self.transport.exists()

    def ensure_repository(self, initial_branch: str | None = None) -> None:
        """Create the database unless it exists (``dolt init``, ``CREATE DATABASE``)."""
        self.transport.ensure(initial_branch)

    def author(self) -> str | None:
        return self.transport.author()

    def active_branch(self) -> str:
        rows = self._read(sql.ACTIVE_BRANCH, what="Cannot read the checked-out branch.")
        return str(rows[0][0]["b"])

    def branch_exists(self, branch: str) -> bool:
        return validate_branch(branch) in self.state().heads

    def state(self) -> RepositoryState:
        rows = self._read(sql.STATE, what=f"Cannot read the state of {self.location}.")
        branches = rows[1]
        changes = rows[2] if len(rows) > 2 else []
        return RepositoryState(
            checked_out=rows[0][0]["b"],
            heads={r["name"]: r["hash"] for r in branches},
            dirty_branches=frozenset(r["name"] for r in branches if r.get("dirty")),
            working_changes=tuple(
                sorted((r["table_name"], bool(r.get("staged")), r["status"]) for r in changes)
            ),
        )

    def resolve(self, ref: str, *, branch: str | None = None) -> str:
        """The commit hash ``ref`` names; ``HEAD`` means the head of ``branch``.

        ``X@{time}`` is the last commit of X at or before that UTC time.
        """
        rows = self._read(
            sql.resolve(ref), branch=branch, what=f"Unknown ref {ref!r} in {self.location}."
        )
        found = rows[0][0].get("h") if rows and rows[0] else None
        if not found:
            raise DoltError(
                f"Ref {ref!r} names no commit in {self.location}.",
                fix="for a time ref, give a time after the branch's first commit (UTC).",
            )
        return str(found)

    def create_branch(self, branch: str, start_point: str, *, exist_ok: bool = False) -> None:
        if parse_time_ref(validate_ref(start_point, key="start_point")):
            start_point = self.resolve(start_point)  # dolt_branch knows no X@{time}
        try:
            self._write(
                sql.create_branch(branch, start_point),
                what=f"Cannot create branch {branch!r} from {start_point!r}.",
            )
        except DoltError as exc:
            # Two nodes may race to create the same branch: the loser finds it there.
            if not (exist_ok and "already exists" in exc.dolt_message):
                raise

    def delete_branch(self, branch: str) -> None:
        self._write(sql.delete_branch(branch), what=f"Cannot delete branch {branch!r}.")

    def find_run_commit(self, run_id: str, *, table: str, branch: str | None) -> str | None:
        """The newest commit on ``branch`` whose trailers name Kedro run ``run_id`` and
        ``table``; ``None`` when that run made no commit of the table there."""
        rows = self._read(
            sql.run_commits(run_id, branch),
            what=f"Cannot search the log of {branch or 'the checked-out branch'!r}.",
        )
        for row in rows[0] if rows else []:
            trailers = parse_trailers(row.get("message", ""))
            if trailers.get("run_id") == run_id and trailers.get("table") == table:
                return str(row["commit_hash"])
        return None

    def tag(self, name: str, ref: str, message: str = "") -> None:
        self._write(sql.tag(name, ref, message), what=f"Cannot tag {ref!r} as {name!r}.")

    def tags(self) -> dict[str, str]:
        """Tag name -> the commit it names."""
        rows = self._read(sql.TAGS, what="Cannot list tags.")
        return {r["tag_name"]: r["tag_hash"] for r in (rows[0] if rows else [])}

    def log(self, ref: str | None = None, limit: int | None = None) -> list[LogEntry]:
        """Commits reachable from ``ref`` (default: the checked-out branch), newest first."""
        rows = self._read(
            sql.log(ref, limit),
            what=f"Cannot read the log of {ref or 'the checked-out branch'!r}.",
        )
        return [LogEntry.from_row(r) for r in (rows[0] if rows else [])]
