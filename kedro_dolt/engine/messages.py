"""Dolt's messages turned into errors a user can act on.

Both transports raise ``DoltCommandError`` with Dolt's own message; this module knows which
messages have a known fix (:func:`explain`) and shortens Go panics (:func:`dolt_summary`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from ..errors import DoltCommandError, DoltError

# Dolt's message fragment -> what the user should do about it.
_FIXES: tuple[tuple[str, str], ...] = (
    ("duplicate column", "column names must be unique, ignoring case: rename the columns."),
    (
        "would be overwritten",
        "make the save_args.primary_key columns unique (check df.duplicated(subset=primary_key)).",
    ),
    (
        "duplicate",
        "make the save_args.primary_key columns unique (check df.duplicated(subset=primary_key)).",
    ),
    ("non-nullable", "primary key columns must not hold missing values: drop or fill them."),
    ("cannot be null", "primary key columns must not hold missing values: drop or fill them."),
    (
        "is not a valid value",
        "the value cannot be stored in that column type: clean or "
        "convert the column (inf/-inf are not storable in Dolt).",
    ),
    (
        "can not be used with mysql",
        "the value cannot be stored in that column type: clean or "
        "convert the column (inf/-inf are not storable in Dolt).",
    ),
    ("out of range", "the value does not fit the column type: clean or convert the column."),
    (
        "branch not found",
        "check the branch/ref exists (`dolt branch -a`, `dolt tag`, "
        "`dolt log`) or create the branch.",
    ),
    ("database not found", "check the branch/ref exists (`dolt branch -a`, `dolt tag`)."),
    ("invalid ref", "give a branch, tag, commit hash or ancestor like 'main~1'."),
    (
        "invalid ancestor spec",
        "the branch has fewer commits than the ref goes back (see `dolt log`): give a "
        "smaller ~N or a commit hash.",
    ),
    (
        "is not a commit",
        "give an existing branch, tag or commit hash (see `dolt branch -a`, `dolt tag`, "
        "`dolt log`).",
    ),
    ("unknown column", "the table's columns differ from what is written: check the names."),
    ("table not found", "check the table name, or save the dataset once before loading it."),
    ("could not be found", "check the column names in load_args.columns or the SQL."),
    (
        "read only",
        "another process holds the repository (e.g. a `dolt sql-server`): stop it "
        "or run kedro-dolt against that server.",
    ),
    (
        "would be stomped",
        "the table has uncommitted changes on that branch, which a save will not overwrite: "
        "commit them (`dolt add <table>; dolt commit -m ...`) or discard them "
        "(`dolt checkout <table>`), then save again.",
    ),
    (
        "no space left",
        "the disk holding the repository (or the temp dir) is full: free space and save again.",
    ),
    (
        "author identity",
        "configure Dolt: `dolt config --global --add user.name NAME` and "
        "`dolt config --global --add user.email EMAIL`.",
    ),
)


#: Lines of a Go panic's stack trace: frames, file positions, goroutine headers.
_GO_FRAME = re.compile(r"\.go:\d+|^\S+\(.*\)$|^created by |^goroutine \d+ \[|^panic: goroutine ")


def dolt_summary(message: str) -> str:
    """Dolt's message without a Go panic's stack trace (its frames say nothing to a user;
    the cause, e.g. ``fatal error: ... no space left on device``, stands among them)."""
    if "goroutine " not in message:
        return message.strip()
    lines = (line.strip() for line in message.splitlines())
    kept = [line for line in lines if line and not _GO_FRAME.search(line)]
    return "\n".join([*dict.fromkeys(kept), "(Dolt crashed; its Go stack trace is omitted)"])


def explain(dolt_message: str, default: str = "") -> str:
    """The fix for a Dolt error message, from the table of known messages."""
    lowered = dolt_message.lower()
    for fragment, fix in _FIXES:
        if fragment in lowered:
            return fix
    return default


@contextlib.contextmanager
def translated(what: str, fix: str = "") -> Iterator[None]:
    """Turn a failed ``dolt`` run into a ``DoltError``: what failed, the fix, Dolt's message."""
    try:
        yield
    except DoltCommandError as exc:
        raise DoltError(
            what, fix=explain(exc.dolt_message, fix), dolt_message=exc.dolt_message
        ) from exc
