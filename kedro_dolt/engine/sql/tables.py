"""SQL that reads tables: rows at a commit, content hashes, diffs and history."""

from __future__ import annotations

from collections.abc import Sequence

from ...naming import quote_identifier, quote_string, validate_ref, validate_table
from .common import SCRATCH_BRANCHES, hash_expression, use


def read_script(table: str, ref: str) -> list[str]:
    """The commit ``ref`` names (``h``), the session branch (``b``), the schema of ``table``
    there and leftover scratch branches; :func:`rows` reads the rows."""
    table_sql, ref_sql = quote_identifier(validate_table(table)), quote_string(ref)
    return [
        *commit_of(ref),
        f"SHOW FULL COLUMNS FROM {table_sql} AS OF {ref_sql};",
        SCRATCH_BRANCHES,
    ]


def commit_of(ref: str) -> list[str]:
    """The commit ``ref`` names (``h``), the session branch (``b``) and database (``db``)."""
    ref_sql = quote_string(ref)
    return [f"SELECT dolt_hashof({ref_sql}) AS h, active_branch() AS b, database() AS db;"]


def version_script(database: str, commit: str, table: str) -> list[str]:
    """The schema of ``table`` in ``commit``, leftover scratch branches, then the table's
    content hash there (``h``)."""
    table_sql, commit_sql = quote_identifier(validate_table(table)), quote_string(commit)
    return [
        f"SHOW FULL COLUMNS FROM {table_sql} AS OF {commit_sql};",
        SCRATCH_BRANCHES,
        *table_hash(database, commit, table),
    ]


def rows(table: str, ref: str, columns: Sequence[str] | None, limit: int | None) -> str:
    """The rows of ``table`` at ``ref``. No ORDER BY: Dolt scans a table in primary-key
    order (rows are stored clustered by key)."""
    wanted = ", ".join(map(quote_identifier, columns)) if columns else "*"
    lim = f" LIMIT {int(limit)}" if limit is not None else ""
    return (
        f"SELECT {wanted} FROM {quote_identifier(validate_table(table))} "
        f"AS OF {quote_string(ref)}{lim};"
    )


def show_tables(ref: str) -> list[str]:
    return [f"SHOW TABLES AS OF {quote_string(validate_ref(ref))};"]


def where_is(ref: str) -> list[str]:
    """The session's database (``db``, ``name/branch`` in a revision database) and the
    commit ``ref`` names (``h``)."""
    return [f"SELECT database() AS db, {hash_expression(validate_ref(ref))} AS h;"]


def table_hash(database: str, commit: str, table: str) -> list[str]:
    """Dolt's content hash of ``table`` in commit ``commit`` (fails if there is no such
    table there)."""
    return [
        use(database, commit),
        f"SELECT dolt_hashof_table({quote_string(validate_table(table))}) AS h;",
    ]


def diff_stat(from_ref: str, to_ref: str, table: str) -> list[str]:
    return [
        f"SET @kedro_dolt_a = {hash_expression(validate_ref(from_ref))};",
        f"SET @kedro_dolt_b = {hash_expression(validate_ref(to_ref))};",
        "SELECT * FROM dolt_diff_stat(@kedro_dolt_a, @kedro_dolt_b, "
        f"{quote_string(validate_table(table))});",
    ]


def commits_of(from_ref: str, to_ref: str) -> list[str]:
    """The commits two refs name (``a``, ``b``): ``dolt_diff`` takes literal refs only."""
    return [
        f"SELECT {hash_expression(validate_ref(from_ref))} AS a, "
        f"{hash_expression(validate_ref(to_ref))} AS b;"
    ]


def diff_rows(from_commit: str, to_commit: str, table: str, limit: int) -> list[str]:
    return [
        f"SELECT * FROM dolt_diff({quote_string(from_commit)}, {quote_string(to_commit)}, "
        f"{quote_string(validate_table(table))}) LIMIT {int(limit)};"
    ]


def history(table: str, limit: int | None) -> list[str]:
    """Commits of the session branch that changed ``table``, newest first."""
    lim = f" LIMIT {int(limit)}" if limit else ""
    return [
        "SELECT commit_hash, committer, email, date, message FROM dolt_diff "
        f"WHERE table_name = {quote_string(validate_table(table))} "
        "AND commit_hash <> 'WORKING' AND commit_hash <> 'STAGED' "
        f"ORDER BY date DESC{lim};"
    ]


def row_counts(table: str, before: str, after: str) -> list[str]:
    """Rows of ``table`` at two commits (``old``, ``new``)."""
    name = quote_identifier(table)
    return [
        f"SELECT (SELECT COUNT(*) FROM {name} AS OF {quote_string(before)}) AS old, "
        f"(SELECT COUNT(*) FROM {name} AS OF {quote_string(after)}) AS new;"
    ]
