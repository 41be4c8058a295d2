"""SQL for a repository's branches, tags, log, remotes and (on a server) its databases."""

from __future__ import annotations

from ...naming import quote_identifier, quote_string, validate_branch, validate_ref
from ..commits import trailer_line
from .common import hash_expression, strings

ACTIVE_BRANCH = ["SELECT active_branch() AS b;"]
#: [0] the checked-out branch, [1] branch heads (dirty working sets), [2] dolt_status.
STATE = [
    "SELECT active_branch() AS b;",
    "SELECT name, hash, dirty FROM dolt_branches;",
    "SELECT table_name, staged, status FROM dolt_status;",
]
TAGS = ["SELECT tag_name, tag_hash FROM dolt_tags;"]
REMOTES = ["SELECT name, url FROM dolt_remotes;"]
#: Whether a server accepts ``LOAD DATA LOCAL INFILE``.
LOCAL_INFILE = "SELECT @@local_infile"


def resolve(ref: str) -> list[str]:
    return [f"SELECT {hash_expression(validate_ref(ref))} AS h;"]


def new_branch(branch: str) -> list[str]:
    """A branch from the session's head."""
    return [f"CALL dolt_branch({quote_string(validate_branch(branch))});"]


def create_branch(branch: str, start_point: str) -> list[str]:
    start = validate_ref(start_point, key="start_point")
    return [f"CALL dolt_branch({strings(validate_branch(branch), start)});"]


def delete_branch(branch: str) -> list[str]:
    return [f"CALL dolt_branch('-D', {quote_string(validate_branch(branch))});"]


def run_commits(run_id: str, branch: str | None) -> list[str]:
    """Commits on ``branch`` whose message names Kedro run ``run_id`` (to be confirmed by
    parsing the trailers: LIKE only narrows)."""
    source = f"dolt_log({quote_string(validate_branch(branch))})" if branch else "dolt_log"
    like = quote_string(f"%{trailer_line('run_id', run_id)}%")
    return [f"SELECT commit_hash, message FROM {source} WHERE message LIKE {like};"]


def tag(name: str, ref: str, message: str = "") -> list[str]:
    args = [validate_branch(name, key="tag"), validate_ref(ref)]
    args += ["-m", message] if message else []
    return [f"CALL dolt_tag({strings(*args)});"]


def log(ref: str | None, limit: int | None) -> list[str]:
    source = f"dolt_log({quote_string(validate_ref(ref))})" if ref else "dolt_log"
    lim = f" LIMIT {int(limit)}" if limit else ""
    return [f"SELECT commit_hash, committer, email, date, message FROM {source}{lim};"]


def remote_user(user: str | None) -> str:
    """``'--user', 'NAME', `` for a remote procedure call, or nothing."""
    return f"'--user', {quote_string(user)}, " if user is not None else ""


def add_remote(name: str, url: str) -> list[str]:
    return [f"CALL dolt_remote('add', {strings(validate_branch(name, key='remote name'), url)});"]


def remove_remote(name: str) -> list[str]:
    return [
        f"CALL dolt_remote('remove', {quote_string(validate_branch(name, key='remote name'))});"
    ]


def fetch(remote: str, branch: str, user: str | None) -> list[str]:
    """Fetch ``remote``; [0] its ``branch`` (if it has one), [1] the local ``branch``."""
    name = quote_string(validate_branch(remote, key="remote name"))
    tracking = f"remotes/{remote}/{validate_branch(branch)}"
    return [
        f"CALL dolt_fetch({remote_user(user)}{name});",
        f"SELECT name, hash FROM dolt_remote_branches WHERE name = {quote_string(tracking)};",
        f"SELECT name, hash FROM dolt_branches WHERE name = {quote_string(branch)};",
    ]


def push(remote: str, ref: str, user: str | None) -> list[str]:
    """Push branch or tag ``ref`` (never forced)."""
    name = validate_branch(remote, key="remote name")
    return [f"CALL dolt_push({remote_user(user)}{strings(name, validate_branch(ref))});"]


def clone(url: str, remote: str, database: str, user: str | None) -> str:
    """Clone ``url`` as ``database`` (on a server: ``dolt_clone``)."""
    name = validate_branch(remote, key="remote name")
    return f"CALL dolt_clone({remote_user(user)}'--remote', {strings(name, url, database)})"


def database_exists(database: str) -> str:
    return (
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = "
        f"{quote_string(database)}"
    )


def create_database(database: str) -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}"
