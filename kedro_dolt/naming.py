"""Validation and quoting of every name that reaches SQL or the ``dolt`` command line.

No value from a catalog is interpolated into SQL without passing through here.
"""

from __future__ import annotations

import re

from .errors import DoltError

# Dolt ref names follow git's rules (no spaces, '..', '@{', control characters, '~^:?*[\\').
# '~N' and '^' are allowed in refs to load (HEAD~2), never in branch names.
_BRANCH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$")
_REF_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-/]*([~^][0-9]*)*$")
_MAX_IDENTIFIER = 64


def validate_branch(name: str, *, key: str = "branch") -> str:
    """Return ``name`` if it is a valid Dolt branch name, else raise ``DoltError``."""
    if (
        not isinstance(name, str)
        or not _BRANCH_RE.match(name)
        or ".." in name
        or "//" in name
        or name.endswith((".", "/", ".lock"))
        or len(name) > 255
    ):
        raise DoltError(
            f"Invalid {key} {name!r}: not a valid Dolt branch name.",
            fix="use letters, digits, '_', '-', '.' and '/' only "
            "(no spaces, no '..', not ending in '.lock'), e.g. 'main' or 'exp/run-1'.",
        )
    return name


# A ref at a point in time, git's reflog syntax: ``main@{2026-11-24 07:00:00}`` (UTC).
# An empty base (``@{...}``) means the dataset's own branch.
_TIME_REF_RE = re.compile(
    r"^(?P<base>[A-Za-z0-9_][A-Za-z0-9_.\-/]*)?@\{(?P<time>\d{4}-\d\d-\d\d"
    r"(?:[ T]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?)?)Z?\}$"
)


#: Kedro's run ids (and save versions): ``2026-11-24T07.01.12.421Z``.
RUN_ID_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z$")


def run_id_time(run_id: str) -> str:
    """Kedro's run id ``2026-11-24T07.01.12.421Z`` as the UTC time ``2026-11-24 07:01:12.421``."""
    day, _, clock = run_id.rstrip("Z").partition("T")
    hours, minutes, seconds, millis = clock.split(".")
    return f"{day} {hours}:{minutes}:{seconds}.{millis}"


def run_state_ref(run_id: str, branch: str | None) -> str:
    """The time ref of ``branch`` (``None``: the dataset's own) when run ``run_id`` started."""
    return f"{branch or ''}@{{{run_id_time(run_id)}}}"


def parse_time_ref(ref: str) -> tuple[str | None, str] | None:
    """``(base, 'YYYY-MM-DD HH:MM:SS')`` for a ``base@{time}`` ref, else ``None``."""
    match = _TIME_REF_RE.match(ref)
    if not match:
        return None
    # A date alone means its midnight, as in Dolt's AS OF TIMESTAMP('2026-11-24').
    return match.group("base"), match.group("time").replace("T", " ")


def validate_ref(ref: str, *, key: str = "ref") -> str:
    """Return ``ref`` if it names a branch, tag, commit hash, ``X~N``/``X^`` ancestor or
    ``X@{time}`` point in time."""
    if isinstance(ref, str) and parse_time_ref(ref) is not None:
        return ref
    if (
        not isinstance(ref, str)
        or not _REF_RE.match(ref)
        or ".." in ref
        or "//" in ref
        or len(ref) > 255
    ):
        raise DoltError(
            f"Invalid {key} {ref!r}: not a Dolt ref.",
            fix="give a branch, a tag, a commit hash, an ancestor like 'main~1' or 'HEAD~2', "
            "or a time like 'main@{2026-11-24 07:00:00}' (UTC).",
        )
    return ref


def validate_table(name: str, *, key: str = "table") -> str:
    """Return ``name`` if Dolt can hold a user table with that name."""
    if not isinstance(name, str) or not name or len(name) > _MAX_IDENTIFIER:
        raise DoltError(
            f"Invalid {key} {name!r}: table names are 1 to {_MAX_IDENTIFIER} characters.",
            fix="set a shorter, non-empty table name in the catalog.",
        )
    if name.lower().startswith("dolt_"):
        raise DoltError(
            f"Invalid {key} {name!r}: names starting with 'dolt_' are Dolt system tables.",
            fix="choose a table name without the 'dolt_' prefix.",
        )
    # The first character is never '-': Dolt reads arguments of its procedures that start
    # with '-' as options (dolt_add('-A'), dolt_reset('--hard')).
    if not re.fullmatch(r"[A-Za-z0-9_$][A-Za-z0-9_$\- ]*", name) or name != name.strip():
        raise DoltError(
            f"Invalid {key} {name!r}: Dolt table names start with a letter, digit, '_' or "
            "'$' and hold letters, digits, '_', '$', '-' and inner spaces only.",
            fix="rename the table, e.g. 'companies' or 'model_input'.",
        )
    return name


def validate_column(name: object) -> str:
    """Return the column name as a string if Dolt can store a column with that name."""
    if not isinstance(name, str):
        raise DoltError(
            f"Invalid column name {name!r}: column names must be strings.",
            fix="rename the DataFrame's columns to strings, e.g. df.columns = df.columns.map(str).",
        )
    if not name or len(name) > _MAX_IDENTIFIER or any(ord(c) < 32 for c in name):
        raise DoltError(
            f"Invalid column name {name!r}: 1 to {_MAX_IDENTIFIER} printable characters.",
            fix="rename the column.",
        )
    if name != name.strip():
        # Dolt keeps 'a ' apart from 'a' when creating a table but not when reading it.
        raise DoltError(
            f"Invalid column name {name!r}: leading or trailing spaces.",
            fix="strip the column names, e.g. df.columns = df.columns.str.strip().",
        )
    return name


def quote_identifier(name: str) -> str:
    """Backtick-quote a table or column name for SQL (backticks inside are doubled)."""
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """Single-quote a string literal for Dolt's SQL dialect."""
    if "\x00" in value:
        raise DoltError(f"Invalid value {value!r}: NUL characters cannot be sent to Dolt.")
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
