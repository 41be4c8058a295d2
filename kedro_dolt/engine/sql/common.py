"""SQL pieces every script uses: a ref's commit, a commit's author, ``USE``, scratch branches."""

from __future__ import annotations

from ...naming import parse_time_ref, quote_identifier, quote_string
from .. import scratch

#: Lists kedro-dolt's scratch branches (to find those of dead processes).
SCRATCH_BRANCHES = (
    f"SELECT name FROM dolt_branches WHERE name LIKE {quote_string(scratch.BRANCH_PREFIX + '%')};"
)


def hash_expression(ref: str) -> str:
    """SQL for the commit hash of ``ref``; a ``X@{time}`` ref picks X's last commit by then."""
    timed = parse_time_ref(ref)
    if timed is None:
        return f"dolt_hashof({quote_string(ref)})"
    base, time = timed
    log = f"dolt_log({quote_string(base)})" if base else "dolt_log"
    return (
        f"(SELECT commit_hash FROM {log} WHERE date <= {quote_string(time)} "
        "ORDER BY date DESC LIMIT 1)"
    )


def author_args(author: str | None) -> str:
    """``dolt_commit``/``dolt_merge`` arguments naming the commit's author, when known."""
    return f", '--author', {quote_string(author)}" if author else ""


def use(database: str, revision: str | None = None) -> str:
    """``USE`` the database, or its revision database ``database/revision`` (a branch, or a
    commit hash: read-only)."""
    name = f"{database}/{revision}" if revision else database
    return f"USE {quote_identifier(name)};"


def strings(*values: str) -> str:
    """Quoted, comma-separated procedure arguments."""
    return ", ".join(map(quote_string, values))
