"""SQL for merges: the merge script on a scratch branch and the conflict previews."""

from __future__ import annotations

from ...naming import quote_string, validate_branch, validate_ref
from .common import author_args


def merge_script(
    source: str, scratch_name: str, message: str, author: str | None, resolve: str | None
) -> list[str]:
    """Merge ``source`` into the session branch through a scratch branch (``resolve``:
    ``ours``/``theirs`` for conflicts). Result sets: [0] from_commit/branch, [1] status, a
    ``fast_forward`` row per merge, [-1] to_commit."""
    name = quote_string(scratch_name)
    msg, by = quote_string(message), author_args(author)
    return [
        "SELECT dolt_hashof('HEAD') AS from_commit, active_branch() AS branch;",
        "SELECT table_name, staged, status FROM dolt_status;",
        "SET @kedro_dolt_branch = active_branch();",
        f"CALL dolt_branch({name});",
        f"CALL dolt_checkout({name});",
        # In one transaction: a conflicted merge is resolved and committed, or nothing is.
        "SET @@autocommit = 0;",
        f"CALL dolt_merge({quote_string(validate_ref(source))}, '-m', {msg}{by});",
        *([f"CALL dolt_conflicts_resolve('--{resolve}', '.');"] if resolve else []),
        # The scratch branch holds nothing but the merge: -A takes only its result.
        f"CALL dolt_commit('-A', '--skip-empty', '-m', {msg}{by});",
        "COMMIT;",
        "SET @@autocommit = 1;",
        "CALL dolt_checkout(@kedro_dolt_branch);",
        f"CALL dolt_merge('--ff-only', {name});",
        f"CALL dolt_branch('-D', {name});",
        "SELECT dolt_hashof('HEAD') AS to_commit;",
    ]


def conflicts_summary(source: str, into: str) -> list[str]:
    """Data and schema conflicts per table that merging ``source`` into ``into`` would give."""
    src, dst = quote_string(validate_ref(source)), quote_string(validate_branch(into))
    return [f"SELECT * FROM dolt_preview_merge_conflicts_summary({dst}, {src});"]


def conflicts(source: str, into: str, table: str) -> list[str]:
    """The conflicting rows of ``table`` (``our_*``, ``their_*``, ``base_*`` columns)."""
    src, dst = quote_string(validate_ref(source)), quote_string(validate_branch(into))
    return [f"SELECT * FROM dolt_preview_merge_conflicts({dst}, {src}, {quote_string(table)});"]
