"""Remotes: list, add and remove them; clone, pull (fetch + merge) and push (never forced).

A remote's password (:class:`~.protocol.RemoteAuth`) reaches only the one ``dolt`` process that
needs it, in its environment; a server transport ignores it (the server reads its own)."""

from __future__ import annotations

from .merging import MergeOps
from .protocol import RemoteAuth
from .results import MergeResult
from .sql import repository as sql


def _password_env(auth: RemoteAuth | None) -> dict[str, str] | None:
    """``DOLT_REMOTE_PASSWORD`` for the one ``dolt`` child that needs it (never os.environ,
    never a command line)."""
    if auth is None or auth.password is None:
        return None
    return {"DOLT_REMOTE_PASSWORD": auth.password}


def _user(auth: RemoteAuth | None) -> str | None:
    return auth.user if auth else None


class RemoteOps(MergeOps):
    """:class:`~.protocol.DoltEngine`'s remote operations."""

    def remotes(self) -> dict[str, str]:
        rows = self._read(sql.REMOTES, what="Cannot list remotes.")
        return {r["name"]: r["url"] for r in (rows[0] if rows else [])}

    def remove_remote(self, name: str) -> None:
        self._write(
            sql.remove_remote(name), what=f"Cannot remove remote {name!r} from {self.location}."
        )

    def add_remote(self, name: str, url: str) -> None:
        self._write(
            sql.add_remote(name, url),
            what=f"Cannot add remote {name!r} ({url}) to {self.location}.",
            fix="check the remote url: file:///abs/dir must be a creatable directory; "
            "https://, aws:// and gs:// remotes need their credentials (see the README).",
        )

    def clone(self, url: str, *, remote: str, auth: RemoteAuth | None = None) -> None:
        """Clone ``url`` as this database (which must not exist yet)."""
        self.transport.clone(url, remote=remote, user=_user(auth), env=_password_env(auth))

    def pull(
        self, remote: str, branch: str, *, auth: RemoteAuth | None = None
    ) -> MergeResult | None:
        """Fetch ``remote`` and merge its ``branch`` into the local one (created if missing).

        ``None`` when the remote has no such branch yet. A conflict raises ``DoltError`` and
        merges nothing.
        """
        rows = self._write(
            sql.fetch(remote, branch, _user(auth)),
            what=f"Cannot fetch from remote {remote!r} of {self.location}.",
            fix="check the remote's url (`dolt remote -v`), that it is reachable and holds a "
            "Dolt database, and its credentials.",
            env=_password_env(auth),
        )
        tracking = f"{remote}/{branch}"
        has_remote_branch, has_local_branch = bool(rows[1]), bool(rows[2])
        if not has_remote_branch:
            return None
        if not has_local_branch:
            self.create_branch(branch, tracking, exist_ok=True)
            head = self.resolve(branch)
            return MergeResult(branch, tracking, head, head, fast_forward=True)
        head = str(rows[2][0]["hash"])
        if str(rows[1][0]["hash"]) == head:
            # Already the remote's head (the usual case after our own push): nothing to merge.
            return MergeResult(branch, tracking, head, head, fast_forward=True)
        return self.merge(
            tracking, branch, message=f"kedro-dolt: pull {tracking}", on_conflict="fail"
        )

    def push(self, remote: str, branch: str, *, auth: RemoteAuth | None = None) -> None:
        """``dolt_push`` ``branch`` (or a tag) to ``remote``; a rejection raises ``DoltError``
        whose ``dolt_message`` says "rejected" (never forced)."""
        self._write(
            sql.push(remote, branch, _user(auth)),
            what=f"Cannot push {branch!r} to remote {remote!r}.",
            env=_password_env(auth),
        )
