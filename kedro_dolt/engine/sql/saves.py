"""SQL for saves: the guarded script on a scratch branch, its bodies, and LOAD DATA.

A save is a script on a private scratch branch (see :mod:`kedro_dolt.engine.scratch`): it
branches from the target's head, writes and commits there, fast-forwards the target and
deletes the scratch branch. Scripts address branches with ``dolt_checkout`` inside their own
session only, so they run the same in a ``dolt --branch B sql`` process and on a server
connection whose session starts in the revision database ``db/B``. Rows travel as
:class:`~kedro_dolt.engine.transport.Load` values; each transport sends them its own way
(``LOAD DATA [LOCAL] INFILE`` from :func:`load_data`, or :func:`insert_rows`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ...naming import quote_identifier, quote_string, validate_table
from ..codec import TEXT_PREFIX
from ..commits import CommitMessage, render
from ..fingerprint import Delta, key_frame
from ..schema import TableSchema
from ..transport import Load, Statement
from .common import SCRATCH_BRANCHES, author_args

#: The branch a save script's guard checks out to stop before writing (it never exists).
STOP_BRANCH = "kedro-dolt/stop"
#: The guard's result set in a save script, and the one after its body (see save_script).
GUARD = "kedro_dolt_guard"
WRITTEN = "kedro_dolt_written"

#: Columns of the in-repository lineage table (``meta: {table: kedro_runs}``).
LINEAGE_COLUMNS: dict[str, str] = {
    "id": "varchar(36) NOT NULL",
    "run_id": "varchar(64)",
    "pipeline": "varchar(255)",
    "node": "varchar(255)",
    "dataset": "varchar(255)",
    "table_name": "varchar(64)",
    "branch": "varchar(255)",
    "from_commit": "varchar(32)",
    "rows_written": "bigint",
    "project": "varchar(255)",
    "kedro_version": "varchar(32)",
    "saved_at": "datetime(6)",
}


def lineage_statements(table: str, lineage_table: str, row: Mapping[str, Any]) -> list[str]:
    """Create the lineage table if needed and add ``row``, only when ``table`` is staged.
    A ``from_commit`` left out is the head the save started from."""

    def value(column: str) -> str:
        if row.get(column) is not None:
            return quote_string(str(row[column]))
        return "@kedro_dolt_from" if column == "from_commit" else "NULL"

    name = quote_identifier(validate_table(lineage_table, key="meta table"))
    columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in LINEAGE_COLUMNS.items())
    names = ", ".join(quote_identifier(c) for c in LINEAGE_COLUMNS)
    values = ", ".join(value(c) for c in LINEAGE_COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS {name} ({columns}, PRIMARY KEY (`id`));",
        f"INSERT INTO {name} ({names}) SELECT {values} FROM DUAL WHERE EXISTS "
        f"(SELECT 1 FROM dolt_status WHERE table_name = {quote_string(table)} AND staged);",
        f"CALL dolt_add({quote_string(lineage_table)});",
    ]


def base_script(table: str) -> list[str]:
    """Where a save starts: head, branch, the table's hash and dirtiness; its columns."""
    name = quote_string(table)
    in_schema = f"TABLE_SCHEMA = database() AND TABLE_NAME = {name}"
    return [
        "SELECT dolt_hashof('HEAD') AS head, active_branch() AS branch, "
        f"IF(EXISTS(SELECT 1 FROM information_schema.TABLES WHERE {in_schema}), "
        f"dolt_hashof_table({name}), NULL) AS table_hash, "
        f"(SELECT COUNT(*) FROM dolt_status WHERE table_name = {name}) AS dirty;",
        "SELECT COLUMN_NAME AS Field, COLUMN_TYPE AS Type, IS_NULLABLE AS `Null`, "
        "COLUMN_KEY AS `Key`, COLUMN_COMMENT AS Comment FROM information_schema.COLUMNS "
        f"WHERE {in_schema} ORDER BY ORDINAL_POSITION;",
    ]


def full_body(table: str, schema: TableSchema, frame: Any, mode: str) -> list[Statement]:
    """Write all of ``frame``: replace the table (overwrite) or add to it (append/upsert)."""
    if mode == "overwrite":
        create = [f"DROP TABLE IF EXISTS {quote_identifier(table)};", schema.ddl(table) + ";"]
    else:  # append and upsert keep the rows there (the schema was checked before)
        create = [schema.ddl(table, if_not_exists=True) + ";"]
    rows = [Load(table, schema, frame, replace=mode == "upsert")] if len(frame) else []
    return [*create, *rows]


def delta_body(table: str, frame: Any, schema: TableSchema, change: Delta) -> list[Statement]:
    """Apply ``change`` on the scratch branch (the script's guard has checked that the table
    there is the one the change was planned against)."""
    name = quote_identifier(table)
    body: list[Statement] = []
    if len(change.upserts):
        body.append(Load(table, schema, frame.iloc[change.upserts], replace=True))
    if len(change.deletes):
        keys = schema.key_schema()
        # A name no user table has (a temporary table would hide a table of the same name).
        gone = f"kedro_dolt_deleted_keys_{uuid.uuid4().hex}"
        columns = ", ".join(map(quote_identifier, keys.primary_key))
        deleted = change.deletes.set_axis(list(keys.primary_key), axis=1)
        body += [
            keys.ddl(gone, temporary=True) + ";",
            Load(gone, keys, key_frame(deleted, keys)),
            f"DELETE FROM {name} WHERE ({columns}) IN "
            f"(SELECT {columns} FROM {quote_identifier(gone)});",
            f"DROP TEMPORARY TABLE {quote_identifier(gone)};",
        ]
    return body


def finish_statements(
    table: str,
    message: CommitMessage | str,
    author: str | None,
    lineage: tuple[str, Mapping[str, Any]] | None,
) -> list[str]:
    """Stage the table (and the lineage row) and commit, unless nothing changed."""
    text = quote_string(render(message))
    return [
        f"CALL dolt_add({quote_string(table)});",
        *(lineage_statements(table, *lineage) if lineage else []),
        f"CALL dolt_commit('--skip-empty'{author_args(author)}, '-m', {text});",
    ]


def save_script(
    table: str,
    schema: TableSchema,
    scratch_name: str,
    body: Sequence[Statement],
    finish: Sequence[str],
    *,
    expected_base: str | None = None,
) -> list[Statement]:
    """Run ``body`` then ``finish`` (stage and commit) on a new scratch branch from the
    session branch's head, fast-forward the session branch to its commit, delete the scratch
    branch, report.

    Two guards stop the script before it commits, answering in result sets of their own so
    the caller reads a typed answer, never a message: with ``expected_base``, before ``body``,
    when the table at the head is not that version (``dolt_hashof_table``: a delta planned
    against another version is never applied); after ``body``, when ``table`` has
    uncommitted changes on the session branch (a save never replaces them; checked after the
    body so that bad rows are reported as such first).

    Result sets: [0] from_commit/branch, [1] the working set's status, [2] scratch branches,
    [3] the guard (``dirty``, ``base_hash``: the table's hash the save builds on, ``proceed``:
    it is the expected one), [4] ``written`` (the body ran), ..., [-2] from/to commits,
    branch, diffable, table_hash, existed (whether the table was there before: a new
    table's rows are those the body loaded), [-1] the diff stat (empty for a new table).
    """
    name, table_sql = quote_string(scratch_name), quote_string(table)
    key = quote_string(",".join(schema.primary_key))
    in_schema = f"TABLE_SCHEMA = database() AND TABLE_NAME = {table_sql}"
    planned = "TRUE"
    if expected_base is not None:
        planned = f"@kedro_dolt_base <=> {quote_string(expected_base)}"
    stop = quote_string(STOP_BRANCH)
    return [
        "SELECT dolt_hashof('HEAD') AS from_commit, active_branch() AS branch;",
        "SELECT table_name, staged, status FROM dolt_status;",
        SCRATCH_BRANCHES,
        "SET @kedro_dolt_from = dolt_hashof('HEAD');",
        "SET @kedro_dolt_branch = active_branch();",
        "SET @kedro_dolt_dirty = (SELECT COUNT(*) FROM dolt_status "
        f"WHERE table_name = {table_sql});",
        f"CALL dolt_branch({name});",
        f"CALL dolt_checkout({name});",
        # Old primary key: dolt_diff_stat cannot compare tables whose key changed.
        "SET @kedro_dolt_key = (SELECT IFNULL(GROUP_CONCAT(COLUMN_NAME ORDER BY "
        "ORDINAL_POSITION SEPARATOR ','), '') FROM information_schema.KEY_COLUMN_USAGE "
        f"WHERE {in_schema} AND CONSTRAINT_NAME = 'PRIMARY');",
        "SET @kedro_dolt_existed = (SELECT COUNT(*) FROM information_schema.TABLES "
        f"WHERE {in_schema});",
        f"SET @kedro_dolt_base = IF(@kedro_dolt_existed, dolt_hashof_table({table_sql}), NULL);",
        f"SET @kedro_dolt_proceed = {planned};",
        "SELECT @kedro_dolt_dirty AS dirty, @kedro_dolt_base AS base_hash, "
        f"@kedro_dolt_proceed AS proceed, 1 AS {GUARD};",
        # Checking out a branch that does not exist stops the script here.
        f"SET @kedro_dolt_go = IF(@kedro_dolt_proceed, active_branch(), {stop});",
        "CALL dolt_checkout(@kedro_dolt_go);",
        *(s for s in body if s),
        f"SELECT 1 AS {WRITTEN};",
        f"SET @kedro_dolt_go = IF(@kedro_dolt_dirty = 0, active_branch(), {stop});",
        "CALL dolt_checkout(@kedro_dolt_go);",
        *finish,
        "SET @kedro_dolt_to = dolt_hashof('HEAD');",
        f"SET @kedro_dolt_table_hash = dolt_hashof_table({table_sql});",
        "CALL dolt_checkout(@kedro_dolt_branch);",
        # Atomic: the target moves to the new commit, or (e.g. when another writer moved it)
        # the statement fails and nothing moves.
        f"CALL dolt_merge('--ff-only', {name});",
        f"CALL dolt_branch('-D', {name});",
        f"SET @kedro_dolt_diffable = @kedro_dolt_existed = 0 OR @kedro_dolt_key = {key};",
        # A new table's diff is all its rows: counted, not diffed (0.5 s at 1M rows).
        "SET @kedro_dolt_stat_from = IF(@kedro_dolt_diffable AND @kedro_dolt_existed, "
        "@kedro_dolt_from, @kedro_dolt_to);",
        "SELECT @kedro_dolt_from AS from_commit, dolt_hashof('HEAD') AS to_commit, "
        "@kedro_dolt_branch AS branch, @kedro_dolt_diffable AS diffable, "
        "@kedro_dolt_table_hash AS table_hash, @kedro_dolt_existed AS existed;",
        f"SELECT * FROM dolt_diff_stat(@kedro_dolt_stat_from, @kedro_dolt_to, {table_sql});",
    ]


def load_data(
    table: str,
    schema: TableSchema,
    path: str,
    prefixed: frozenset[str] = frozenset(),
    *,
    replace: bool = False,
    local: bool = False,
) -> str:
    """``LOAD DATA [LOCAL] INFILE`` of the rows :func:`~kedro_dolt.engine.codec.encode_tsv`
    writes (``prefixed``: its text columns whose values carry the prefix; ``replace``: rows
    with an existing key replace it, as an upsert; ``local``: the client sends the file)."""
    targets, assignments = [], []
    for i, name in enumerate(schema.names):
        if name in prefixed:
            # Read into a variable: \\N arrives there as the text NULL, values with the prefix.
            var = f"@kedro_dolt_c{i}"
            targets.append(var)
            assignments.append(
                f"{quote_identifier(name)} = IF(LEFT({var}, 1) = {quote_string(TEXT_PREFIX)}, "
                f"SUBSTRING({var}, 2), NULL)"
            )
        else:
            targets.append(quote_identifier(name))
    tail = f" SET {', '.join(assignments)}" if assignments else ""
    return (
        f"LOAD DATA {'LOCAL ' if local else ''}INFILE {quote_string(path)}"
        f"{' REPLACE' if replace else ''} INTO TABLE {quote_identifier(table)} "
        "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
        f"LINES TERMINATED BY '\\n' ({', '.join(targets)}){tail}"
    )


def insert_rows(table: str, schema: TableSchema, *, replace: bool = False) -> str:
    """A multi-row ``INSERT`` (``REPLACE``) template with PyMySQL's ``%s`` placeholders."""
    names = ", ".join(quote_identifier(c).replace("%", "%%") for c in schema.names)
    verb = "REPLACE" if replace else "INSERT"
    return (
        f"{verb} INTO {quote_identifier(table).replace('%', '%%')} ({names}) "
        f"VALUES ({', '.join(['%s'] * len(schema.names))})"
    )


def discard_scratch(name: str) -> list[str]:
    """The session branch's head, then the scratch branch deleted (a failed script's)."""
    return ["SELECT dolt_hashof('HEAD') AS h;", f"CALL dolt_branch('-D', {quote_string(name)});"]


def stage(tables: Sequence[str]) -> list[str]:
    return [f"CALL dolt_add({', '.join(map(quote_string, tables))});"]
