"""The SQL of each engine operation, written once for every transport.

A save or merge is a script on a private scratch branch (see :mod:`kedro_dolt.scratch`): it
branches from the target's head, writes and commits there, fast-forwards the target and
deletes the scratch branch. Scripts address branches with ``dolt_checkout`` inside their own
session only, so they run the same in a ``dolt --branch B sql`` process and on a server
connection whose session starts in the revision database ``db/B``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .. import scratch
from ..fingerprint import Delta
from ..naming import parse_time_ref, quote_identifier, quote_string, validate_table
from ..schema import TableSchema
from .transport import Load, Statement

#: Lists kedro-dolt's scratch branches (to find those of dead processes).
SCRATCH_BRANCHES = (
    f"SELECT name FROM dolt_branches WHERE name LIKE {quote_string(scratch.BRANCH_PREFIX + '%')};"
)
#: The branch a save script's guard checks out to stop before writing (it never exists).
STOP_BRANCH = "kedro-dolt/stop"


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


def lineage_statements(table: str, lineage_table: str, row: dict[str, Any]) -> list[str]:
    """Create the lineage table if needed and add ``row``, only when ``table`` is staged."""
    from ..metadata import LINEAGE_COLUMNS  # the lineage table's schema is metadata's

    name = quote_identifier(validate_table(lineage_table, key="meta table"))
    columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in LINEAGE_COLUMNS.items())
    names = ", ".join(quote_identifier(c) for c in LINEAGE_COLUMNS)
    values = ", ".join(
        "NULL" if row.get(c) is None else quote_string(str(row[c])) for c in LINEAGE_COLUMNS
    )
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
        create = [schema.ddl(table).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1) + ";"]
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
            Load(gone, keys, _as_key_values(deleted, keys)),
            f"DELETE FROM {name} WHERE ({columns}) IN "
            f"(SELECT {columns} FROM {quote_identifier(gone)});",
            f"DROP TEMPORARY TABLE {quote_identifier(gone)};",
        ]
    return body


def finish_statements(
    table: str, message: str, author: str | None, lineage: tuple[str, dict[str, Any]] | None
) -> list[str]:
    """Stage the table (and the lineage row) and commit, unless nothing changed."""
    return [
        f"CALL dolt_add({quote_string(table)});",
        *(lineage_statements(table, *lineage) if lineage else []),
        f"CALL dolt_commit('--skip-empty'{author_args(author)}, '-m', {quote_string(message)});",
    ]


#: The guard's result set in a save script, and the one after its body (see save_script).
GUARD = "kedro_dolt_guard"
WRITTEN = "kedro_dolt_written"


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
    branch, diffable, table_hash, new_table_rows (the row count of a table that did not
    exist before), [-1] the diff stat (empty for a new table).
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
        "@kedro_dolt_table_hash AS table_hash, IF(@kedro_dolt_existed, NULL, "
        f"(SELECT COUNT(*) FROM {quote_identifier(table)})) AS new_table_rows;",
        f"SELECT * FROM dolt_diff_stat(@kedro_dolt_stat_from, @kedro_dolt_to, {table_sql});",
    ]


def merge_script(
    source: str, scratch_name: str, message: str, author: str | None, resolve: str | None
) -> list[Statement]:
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
        f"CALL dolt_merge({quote_string(source)}, '-m', {msg}{by});",
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


def read_script(table: str, ref: str) -> list[str]:
    """The commit ``ref`` names (``h``), the session branch (``b``), the schema of ``table``
    there and leftover scratch branches; :func:`rows_statement` reads the rows."""
    table_sql, ref_sql = quote_identifier(validate_table(table)), quote_string(ref)
    return [
        f"SELECT dolt_hashof({ref_sql}) AS h, active_branch() AS b;",
        f"SHOW FULL COLUMNS FROM {table_sql} AS OF {ref_sql};",
        SCRATCH_BRANCHES,
    ]


def rows_statement(table: str, ref: str, columns: Sequence[str] | None, limit: int | None) -> str:
    """The rows of ``table`` at ``ref``. No ORDER BY: Dolt scans a table in primary-key
    order (rows are stored clustered by key)."""
    wanted = ", ".join(map(quote_identifier, columns)) if columns else "*"
    lim = f" LIMIT {int(limit)}" if limit is not None else ""
    return (
        f"SELECT {wanted} FROM {quote_identifier(validate_table(table))} "
        f"AS OF {quote_string(ref)}{lim};"
    )


def _as_key_values(keys: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Stored key values (a fingerprint's, see :func:`kedro_dolt.fingerprint.canonical`) as
    values of the key columns' dtypes, for a :class:`Load`."""
    out = {}
    for column in schema.columns:
        values = keys[column.name].to_numpy()
        if column.sql_type == "datetime(6)":
            out[column.name] = pd.Series(values.view("int64").astype("datetime64[us]"))
        elif column.sql_type in ("double", "float"):
            out[column.name] = pd.Series(values.astype("uint64").view("float64"))
        elif column.sql_type == "tinyint(1)":
            out[column.name] = pd.Series(values.astype(bool))
        elif column.sql_type.split("(")[0] in ("tinyint", "smallint", "mediumint", "int", "bigint"):
            kind = "uint64" if column.sql_type.endswith("unsigned") else "int64"
            out[column.name] = pd.Series(values.astype("uint64").view(kind))
        else:
            out[column.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(out)
