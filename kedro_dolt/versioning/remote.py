"""``Remote``: keep a dataset's repository in step with a Dolt remote.

Before a load or a save the relevant branch is pulled (fetch + merge); after a successful save
it is pushed. A push rejected as non-fast-forward is recovered by pull-merge-push, a bounded
number of times, never by ``--force``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..engine import DoltEngine, DoltServerEngine, MergeResult, RemoteAuth
from ..errors import DoltError
from ..framework import context
from ..naming import validate_branch
from ..secrets import MASK, mask_url_credentials

logger = logging.getLogger(__name__)

#: Url schemes Dolt's remotes understand, besides git's (git+file, git+https, git+ssh).
REMOTE_SCHEMES = frozenset({"file", "http", "https", "aws", "gs", "oci"})


def _known_scheme(scheme: str) -> bool:
    scheme = scheme.lower()
    return scheme in REMOTE_SCHEMES or scheme in {"git+file", "git+https", "git+ssh"}


#: How often a rejected push is retried after pulling the remote's new commits.
PUSH_ATTEMPTS = 3

# A file:// remote store holds table files plus `manifest`, whose first line reads
# `5:__DOLT__:<lock>:<root>:...` (Dolt 1.86). A fetch or a clone of a store without data
# leaves only `oldgen` (and `LOCK`) behind: a store Dolt started, not the user's files.
_MANIFEST = re.compile(rb"\d+:__[A-Z0-9_]+__:")
_DOLT_LEFTOVERS = frozenset({"oldgen", "LOCK"})


def file_remote_directory(url: str) -> Path | None:
    """The directory of a ``file:///abs/dir`` url (percent-decoded, as Dolt does), else None."""
    if not url.startswith("file://") or not url[len("file://") :].startswith("/"):
        return None
    return Path(unquote(url[len("file://") :]))


def is_dolt_remote_store(directory: Path) -> bool:
    """Whether ``directory`` is a store a ``file://`` remote wrote (it has Dolt's manifest)."""
    try:
        with open(directory / "manifest", "rb") as manifest:
            return _MANIFEST.match(manifest.read(64)) is not None
    except OSError:  # missing, a directory, unreadable: not a store
        return False


def check_file_remote(url: str, *, remote: str) -> None:
    """Refuse a ``file://`` remote whose directory holds anything but Dolt's remote store.

    Dolt writes its store (manifest, table files, ``oldgen``) straight into the directory on
    push, fetch and clone, next to whatever is there: pointing a remote at the wrong,
    non-empty directory would scatter Dolt's files among the user's. A missing or empty
    directory and an existing store are fine.
    """
    directory = file_remote_directory(url)
    if directory is None or not directory.is_dir() or is_dolt_remote_store(directory):
        return  # not a local directory (Dolt reports a regular file itself), or Dolt's own
    try:
        foreign = sorted(entry.name for entry in directory.iterdir())
    except OSError:
        return  # unreadable: Dolt's own error says so
    foreign = [name for name in foreign if name not in _DOLT_LEFTOVERS]
    if not foreign:
        return
    shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
    raise DoltError(
        f"Remote {remote!r} points at {directory}, which holds other files ({shown}) and no "
        "Dolt remote data; Dolt would write its own files next to them. "
        "Nothing was written there.",
        fix=f"point the remote url at a new or empty directory (e.g. file://{directory}/dolt), "
        "or at a directory an earlier push made (it has a Dolt `manifest` file).",
    )


def _check_user(user: object) -> None:
    if user is not None and (
        not isinstance(user, str)
        or not user.strip()
        or user.startswith("-")
        or any(ord(c) < 32 for c in user)
    ):
        raise DoltError(
            f"Invalid remote user {user!r}: a user name on the remote is expected.",
            fix="give the name of the remote's user, e.g. remote: {name: origin, url: ..., "
            "user: kedro}; its password goes in credentials: {remote_password: ...}.",
        )


def _check_url(url: object) -> None:
    if not isinstance(url, str) or "://" not in url or not _known_scheme(url.split("://")[0]):
        raise DoltError(
            f"Invalid remote url {url!r}: Dolt remotes are file://, http(s)://, "
            "aws://, gs://, oci:// or git+...:// urls.",
            fix="give a url with a scheme: file:///abs/dir, "
            "https://doltremoteapi.dolthub.com/org/repo, aws://[table:bucket]/db, "
            "gs://bucket/path.",
        )


@dataclass(frozen=True)
class Remote:
    """A Dolt remote: ``Remote(name="origin", url="file:///srv/dolt/warehouse")``.

    A relative ``file://`` url (``file://data/remote``) is relative to the Kedro project root.

    YAML: ``remote: {name: origin, url: ..., pull: true, push: true}``. ``url`` may be left
    out when the repository already has the remote. When ``database`` does not exist yet and a
    url is given, the first use clones it.

    ``user`` logs in to a remote that asks for a user and password (a ``dolt sql-server``'s
    remotesapi, DoltLab): Dolt's ``--user``. The password is never in the catalog: it comes
    from the dataset's ``credentials: {remote_password: ...}`` (see :func:`with_credentials`)
    and reaches only the ``dolt`` process that needs it, as ``DOLT_REMOTE_PASSWORD``.
    """

    name: str = "origin"
    url: str | None = None
    pull: bool = True
    push: bool = True
    user: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_branch(self.name, key="remote name")
        _check_user(self.user)
        if self.password is not None and not isinstance(self.password, str):
            raise DoltError(
                "Invalid credentials.remote_password: a string is expected.",
                fix="quote the password in conf/local/credentials.yml, e.g. "
                'remote_password: "${oc.env:DOLT_REMOTE_PASSWORD}".',
            )
        if self.url is not None:
            _check_url(self.url)
            if self.url.startswith("file://") and not self.url[7:].startswith("/"):
                # file://data/remote: relative to the project root, like a dataset's database.
                absolute = context.resolve_database(self.url[len("file://") :])
                object.__setattr__(self, "url", f"file://{absolute}")

    @classmethod
    def from_config(cls, value: Remote | Mapping[str, Any] | None) -> Remote | None:
        if value is None or isinstance(value, Remote):
            return value
        if isinstance(value, Mapping):
            if "password" in value or "remote_password" in value:
                raise DoltError(
                    "A password in remote would sit in the catalog, in plain sight.",
                    fix="remove it from remote and put it in the dataset's credentials "
                    "(conf/local/credentials.yml): credentials: {remote_password: ...}; "
                    "remote.user names the user.",
                )
            unknown = sorted(set(value) - {"name", "url", "pull", "push", "user"})
            if unknown:
                raise DoltError(
                    f"Unknown key(s) {unknown} in remote.",
                    fix="use name, url, pull, push and user, e.g. "
                    "remote: {name: origin, url: file:///srv/dolt/warehouse}.",
                )
            return cls(**dict(value))
        raise DoltError(
            f"Invalid remote {value!r}.",
            fix="give a mapping like {name: origin, url: file:///srv/dolt/warehouse}.",
        )

    def prepare(self, engine: DoltEngine, *, for_save: bool = False) -> bool:
        """Clone on first use, else make sure the repository knows this remote; whether the
        remote was added now.

        A save into an empty remote (no Dolt data yet) starts a local repository instead;
        the remote is added before the first push.
        """
        if not engine.exists():
            if self.url is None:
                return False  # the first save will `dolt init`
            check_file_remote(self.url, remote=self.name)
            try:
                with self._credential_errors(engine, "clone"):
                    engine.clone(self.url, remote=self.name, auth=self._auth)
            except DoltError as exc:
                if not (for_save and "no Dolt data" in exc.dolt_message):
                    raise
            return False
        return self._ensure_remote(engine)

    def _ensure_remote(self, engine: DoltEngine) -> bool:
        """Add the remote when missing (``True``); check the url in use before any pull or
        push."""
        known = engine.remotes()
        if self.name not in known:
            if self.url is None:
                raise DoltError(
                    f"Remote {self.name!r} is not configured in {engine.location}.",
                    fix=f"add url: to the remote entry or run `dolt remote add {self.name} URL`.",
                )
            check_file_remote(self.url, remote=self.name)
            engine.add_remote(self.name, self.url)
            return True
        # The repository's url wins (it may have been added by hand): that is where Dolt writes.
        check_file_remote(known[self.name], remote=self.name)
        if self.url is not None and known[self.name] != self.url:
            logger.warning(
                "Remote %r of %s points at %s, not %s as configured; using the repository's.",
                self.name,
                engine.location,
                mask_url_credentials(known[self.name]),
                mask_url_credentials(self.url),
                extra={"markup": False},
            )
        return False

    def pull_branch(
        self, engine: DoltEngine, branch: str | None, *, for_save: bool = False
    ) -> MergeResult | None:
        """Bring ``branch`` up to date with the remote (when ``pull`` is on)."""
        added = self.prepare(engine, for_save=for_save)
        if not self.pull or not engine.exists():
            return None
        try:
            with self._credential_errors(engine, "fetch"):
                return engine.pull(self.name, branch or engine.active_branch(), auth=self._auth)
        except DoltError:
            if added:  # a remote that does not work is not left behind in the repository
                with contextlib.suppress(DoltError):
                    engine.remove_remote(self.name)
            raise

    def push_branch(self, engine: DoltEngine, branch: str, *, checked: bool = False) -> bool:
        """Push ``branch`` (when ``push`` is on); recover rejections by pull-merge-push.
        ``checked``: :meth:`prepare` found the repository knowing this remote just before."""
        if not self.push:
            return False
        if not checked:
            self._ensure_remote(engine)  # a repository started by this save lacks it
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            try:
                with self._credential_errors(engine, "push"):
                    engine.push(self.name, branch, auth=self._auth)
                return True
            except DoltError as exc:
                rejected = "rejected" in exc.dolt_message or "non-fast-forward" in exc.dolt_message
                if not rejected or attempt == PUSH_ATTEMPTS:
                    raise
                logger.info(
                    "Push of %s to %s was rejected (attempt %d); pulling and retrying.",
                    branch,
                    self.name,
                    attempt,
                    extra={"markup": False},
                )
                with self._credential_errors(engine, "fetch"):
                    # a conflict raises; nothing merged then
                    engine.pull(self.name, branch, auth=self._auth)
        return False  # unreachable: the last attempt returns or raises

    def push_tag(self, engine: DoltEngine, tag: str) -> None:
        """Push ``tag`` (a save's tag, after its branch was pushed)."""
        with self._credential_errors(engine, "push"):
            engine.push(self.name, tag, auth=self._auth)

    @property
    def _auth(self) -> RemoteAuth | None:
        return RemoteAuth(self.user, self.password) if self.user is not None else None

    @contextlib.contextmanager
    def _credential_errors(self, engine: DoltEngine, operation: str) -> Iterator[None]:
        """A remote operation's error, with the credentials fix when they are the cause,
        and never the password (Dolt does not echo it; this makes sure)."""
        try:
            yield
        except DoltError as exc:
            fix = credentials_fix(
                exc.dolt_message,
                user=self.user,
                server=isinstance(engine, DoltServerEngine),
                operation=operation,
            )
            secret = self.password or ""
            if fix is None and not (secret and secret in str(exc)):
                raise

            def hide(text: str) -> str:
                return text.replace(secret, MASK) if secret else text

            raise DoltError(
                hide(exc.what), fix=hide(fix or exc.fix), dolt_message=hide(exc.dolt_message)
            ) from exc

    def describe(self) -> dict[str, Any]:
        # Urls may embed credentials (https://user:token@host): the dataset's repr shows this.
        # The user name is shown (it helps debugging); the password never.
        url = mask_url_credentials(self.url) if self.url else self.url
        described = {"name": self.name, "url": url, "pull": self.pull, "push": self.push}
        if self.user is not None:
            described["user"] = self.user
        return described

    def __repr__(self) -> str:  # the dataclass repr would print the url as given
        return f"Remote({', '.join(f'{k}={v!r}' for k, v in self.describe().items())})"


#: The remote's key in a dataset's Kedro ``credentials`` that holds the remote user's password.
PASSWORD_KEY = "remote_password"


def with_credentials(remote: Remote | None, credentials: Mapping[str, Any] | None) -> Remote | None:
    """``remote`` with the password from the dataset's ``credentials`` (``remote_password``).

    The CLI engine hands it to the one ``dolt`` process that needs it. A server engine
    (``credentials`` with ``con``) cannot: the server runs ``dolt_fetch``/``dolt_push`` in its
    own process, with its own environment, so a password here is refused rather than ignored.
    """
    password = (credentials or {}).get(PASSWORD_KEY)
    if password is None:
        return remote
    if (credentials or {}).get("con"):
        raise DoltError(
            f"credentials.{PASSWORD_KEY} cannot reach a dolt sql-server: the server runs "
            "fetch, pull and push itself and takes the remote's password only from its own "
            "environment.",
            fix=f"remove {PASSWORD_KEY} from these credentials and start the server with "
            "DOLT_REMOTE_PASSWORD set (e.g. `DOLT_REMOTE_PASSWORD=... dolt sql-server ...`); "
            "remote.user names the user.",
        )
    if remote is None or remote.user is None:
        raise DoltError(
            f"credentials.{PASSWORD_KEY} is set, but the dataset's remote has no user: Dolt "
            "sends a password only with a user name.",
            fix="name the remote's user: remote: {name: origin, url: ..., user: NAME}"
            + (" (the dataset has no remote at all)" if remote is None else "")
            + f", or remove {PASSWORD_KEY} from the credentials.",
        )
    return replace(remote, password=password)


#: Dolt's messages when the remote refused who logged in (remotesapi, DoltHub, DoltLab).
_DENIED = ("unauthenticated", "access denied for user", "authentication failure")
_NOT_ALLOWED = ("has not been granted superuser", "permissiondenied", "permission denied")
_AWS = (
    "failed to refresh cached credentials",
    "no ec2 imds role",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "expiredtoken",
    "unrecognizedclientexception",
    "accessdenied",
)


def credentials_fix(
    dolt_message: str, *, user: str | None, server: bool, operation: str
) -> str | None:
    """The fix for a remote operation that failed because of its credentials, else None.

    ``server``: the engine is a dolt sql-server, which logs in with its own environment.
    """
    lowered = dolt_message.lower()
    where = (
        "the DOLT_REMOTE_PASSWORD the dolt sql-server was started with"
        if server
        else f"credentials.{PASSWORD_KEY}"
    )
    if "must set dolt_remote_password" in lowered:
        if server:
            return (
                f"the dolt sql-server runs the {operation} itself and reads the password of "
                f"remote.user {user!r} from its own environment: restart it with "
                "DOLT_REMOTE_PASSWORD set (e.g. `DOLT_REMOTE_PASSWORD=... dolt sql-server ...`)."
            )
        return (
            f"remote.user {user!r} needs a password: set {PASSWORD_KEY} in the dataset's "
            "credentials (conf/local/credentials.yml)."
        )
    if any(fragment in lowered for fragment in _DENIED):
        if user is None:
            return "the remote asks who you are: set remote.user and the user's password in " + (
                "the dolt sql-server's environment (DOLT_REMOTE_PASSWORD)."
                if server
                else f"credentials.{PASSWORD_KEY}."
            )
        return (
            f"check remote.user ({user!r}) and {where}: the remote refused them. On a "
            "dolt sql-server remote the user must exist with CLONE_ADMIN (clone, fetch) and "
            "write privileges (push)."
        )
    if any(fragment in lowered for fragment in _NOT_ALLOWED):
        return (
            f"the remote accepted remote.user {user!r} but does not let it {operation}: grant "
            "the user write access on the remote (on a dolt sql-server: GRANT ALL PRIVILEGES "
            "ON *.* TO the user), use another user, or set push: false."
        )
    if any(fragment in lowered for fragment in _AWS):
        return (
            "the aws:// remote uses the AWS SDK's credentials: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and AWS_REGION in the environment "
            + ("the dolt sql-server runs in." if server else "kedro runs in.")
        )
    return None
