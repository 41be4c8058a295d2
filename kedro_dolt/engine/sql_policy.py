"""What a ``DoltSQLQueryDataset`` query may be, and where it runs: one read-only SELECT.

Two layers, so that fooling one changes nothing:

1. :func:`read_only_statement` parses the query with sqlglot's MySQL dialect (taught Dolt's
   ``AS OF``) and accepts exactly one ``SELECT`` (``WITH ... SELECT``, ``UNION`` /
   ``INTERSECT`` / ``EXCEPT`` of selects) with no ``INTO``, no locking clause, no variable
   assignment, no executable comment and no function that changes anything. It returns the
   statement to run, rebuilt from sqlglot's own tokens with every comment dropped: Dolt is
   handed only text whose tokens were checked, so a comment Dolt would read differently
   cannot hide a statement, and where the lexers are known to disagree (``--x`` is a comment
   to Dolt, not to MySQL) the query is refused. Queries sqlglot cannot parse are refused
   (fail closed), never run unchecked.
2. :func:`storage_read_only` holds a shared lock on the repository's chunk store while the
   query runs. Dolt takes that lock exclusively to write; a ``dolt`` process that cannot
   get it opens the repository read-only, so tables, branches, tags, commits and working sets
   cannot change whatever statement reaches Dolt. The engine also runs the query in the
   read-only revision database of the resolved commit, in an empty scratch directory (the
   CLI's ``secure_file_priv``), so ``INTO OUTFILE`` / ``LOAD_FILE`` reach nothing.

Not covered by layer 2 (the parser alone refuses them): files outside the chunk store that
some statements write, such as ``CREATE DATABASE`` (a directory next to the data),
``CALL dolt_remote('add', ...)`` (``repo_state.json``) or ``CREATE USER`` (``.doltcfg``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import SqlglotError

from ..errors import DoltError

__all__ = ["read_only_statement", "storage_read_only"]

_WRITE_ELSEWHERE = (
    "To change data, save through a DoltTableDataset; for branches, tags and commits use the "
    "dataset options or the dolt CLI."
)
_ONE_SELECT = "write one SELECT (or WITH ... SELECT, or SELECTs joined by UNION)"
_ONLY_SELECT = f"{_ONE_SELECT[0].upper()}{_ONE_SELECT[1:]}. {_WRITE_ELSEWHERE}"

# What a statement may start with; anything else is refused before parsing.
_SELECT_STARTS = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN})

# Dolt functions and table functions that only read. Every other ``dolt_*`` name is refused:
# most are procedures (dolt_commit, dolt_branch, dolt_reset, ...) that older Dolt versions
# also exposed as functions, and a new one is assumed to write until it is listed here.
READ_ONLY_DOLT_FUNCTIONS = frozenset(
    {
        "active_branch",
        "dolt_diff",
        "dolt_diff_stat",
        "dolt_diff_summary",
        "dolt_hashof",
        "dolt_hashof_db",
        "dolt_hashof_table",
        "dolt_log",
        "dolt_merge_base",
        "dolt_patch",
        "dolt_preview_merge_conflicts",
        "dolt_preview_merge_conflicts_summary",
        "dolt_query_diff",
        "dolt_reflog",
        "dolt_schema_diff",
        "dolt_version",
        "has_ancestor",
        "hashof",
    }
)

# Dolt's short procedure aliases and the unprefixed function forms of old versions.
_DOLT_WRITERS = frozenset(
    {
        "dadd",
        "dbranch",
        "dcheckout",
        "dclean",
        "dcommit",
        "dfetch",
        "dgc",
        "dmerge",
        "dpull",
        "dpush",
        "dreset",
        "drevert",
        "dverify_all_constraints",
        "dverify_constraints",
        "commit",
        "merge",
        "reset",
        "squash",
    }
)

# MySQL built-ins a read must not call, and why. SLEEP and friends write nothing, but the
# query holds the repository's read lock, which blocks every save until it ends.
_FORBIDDEN_BUILTINS = {
    "load_file": "reads files from the machine, not data from the repository",
    "sleep": "only waits, while holding the lock that blocks every save",
    "benchmark": "only burns time, while holding the lock that blocks every save",
    "get_lock": "takes a named lock (session state a read has no use for)",
    "release_lock": "releases a named lock (session state a read has no use for)",
    "release_all_locks": "releases named locks (session state a read has no use for)",
    "is_free_lock": "inspects named locks (session state a read has no use for)",
    "is_used_lock": "inspects named locks (session state a read has no use for)",
    "master_pos_wait": "waits for replication, while holding the lock that blocks saves",
    "source_pos_wait": "waits for replication, while holding the lock that blocks saves",
    "wait_for_executed_gtid_set": "waits for replication, while holding the lock",
    "wait_until_sql_thread_after_gtids": "waits for replication, while holding the lock",
}

# Fixes for the statements people reach for, by kind; the others get _ONLY_SELECT.
_STATEMENT_FIXES = {
    "USE": "USE switches to another database or branch, where writes are possible; choose "
    "the version with the dataset's `ref` (or `FROM t AS OF 'ref'`) instead.",
    "CALL": "CALL runs a stored procedure (Dolt's dolt_commit, dolt_branch, dolt_reset, ... "
    "change the repository). " + _WRITE_ELSEWHERE,
    "SET": "SET changes session or server variables; remove it (a query dataset cannot set "
    "variables).",
    "SHOW": "read the same through SELECT: information_schema.tables / .columns, or Dolt's "
    "system tables (dolt_branches, dolt_log, dolt_status, ...).",
    "DESCRIBE": "read columns through SELECT ... FROM information_schema.columns.",
}


def _refuse_statement(kind: str) -> DoltError:
    return _refuse(
        f"{kind} statements are not allowed, only one SELECT.",
        _STATEMENT_FIXES.get(kind, _ONLY_SELECT),
    )


class _Dolt(MySQL):
    """MySQL as Dolt speaks it: a table may be followed by ``AS OF <ref or timestamp>``."""

    # MySQL.Parser is a class attribute, which mypy does not accept as a base class.
    class Parser(MySQL.Parser):  # type: ignore[misc,valid-type]
        def _parse_version(self) -> exp.Version | None:
            # Called right after a table name (before its alias) by every sqlglot since 25.
            if self._match_text_seq("AS", "OF"):
                return exp.Version(this="VERSION", kind="AS OF", expression=self._parse_bitwise())
            return super()._parse_version()  # type: ignore[no-any-return]


_DIALECT = _Dolt()


def _refuse(what: str, fix: str) -> DoltError:
    return DoltError(
        f"Query refused (DoltSQLQueryDataset runs one read-only SELECT): {what}", fix=fix
    )


def _tokens(sql: str) -> list[Token]:
    try:
        # An optimizer hint `/*+ ... */` is a token to sqlglot and a comment to Dolt: drop it
        # like every other comment (plans may change, results cannot).
        return [t for t in _DIALECT.tokenize(sql) if t.token_type != TokenType.HINT]
    except SqlglotError as exc:
        raise _refuse(
            f"the query cannot be read as SQL ({str(exc).splitlines()[0]}).",
            f"check quotes and comments, and {_ONE_SELECT}.",
        ) from exc


# The comments in the text between tokens (which holds only whitespace and comments).
_COMMENT = re.compile(r"/\*.*?\*/|#[^\n]*|--[^\n]*", re.DOTALL)
_DOUBLE_DASH = (
    "`--` directly followed by text is a comment to Dolt but not to MySQL.",
    "write `-- comment` (with a space) for a comment, or `- -x` for minus minus.",
)


def _check_comments(sql: str, tokens: list[Token]) -> None:
    gaps = [sql[: tokens[0].start]] if tokens else [sql]
    gaps += [sql[a.end + 1 : b.start] for a, b in itertools.pairwise(tokens)]
    gaps += [sql[tokens[-1].end + 1 :]] if tokens else []
    for comment in (m.group() for gap in gaps for m in _COMMENT.finditer(gap)):
        if comment.startswith("/*") and "/*!" in comment:
            # MySQL and Dolt run `/*! ... */` and `/*!50000 ... */` as SQL (one inside a hint
            # or another comment does not run, but is refused all the same).
            raise _refuse(
                "it contains a MySQL executable comment `/*! ... */`, whose text Dolt runs as SQL.",
                "remove the comment, or write its SQL as plain SQL if it is meant to run.",
            )
        if comment.startswith("--") and comment[2:3].strip():
            raise _refuse(*_DOUBLE_DASH)  # older sqlglot reads `--x` as a comment, as Dolt


def _statement_tokens(tokens: list[Token]) -> list[Token]:
    """The tokens of the one statement: trailing `;` dropped, any other `;` refused."""
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens = tokens[:-1]
    if not tokens:
        raise _refuse("the query is empty (only comments or `;`).", f"{_ONE_SELECT}.")
    count = 1 + sum(t.token_type == TokenType.SEMICOLON for t in tokens)
    if count > 1:
        raise _refuse(
            f"the query has {count} statements; exactly one SELECT is run.",
            f"remove everything after the first `;` (one dataset per query). {_WRITE_ELSEWHERE}",
        )
    return tokens


def _check_tokens(tokens: list[Token]) -> None:
    """Rules that must hold whatever sqlglot makes of the statement."""
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        kind = token.token_type
        if kind == TokenType.INTO:
            raise _refuse(
                "SELECT ... INTO writes the result to a file or variables.",
                "remove the INTO clause; the dataset returns the result as a DataFrame.",
            )
        if kind == TokenType.COLON_EQ:
            raise _refuse(
                "`:=` assigns a user variable.",
                "remove the assignment; compute the value in the SELECT list or a CTE.",
            )
        if following is None:
            continue
        if following.token_type == TokenType.L_PAREN:
            _check_function(token.text.lower())
        if kind == following.token_type == TokenType.DASH and following.start == token.end + 1:
            # MySQL (and sqlglot >= 30) read `--1` as minus minus one, Dolt as a comment to
            # the end of the line: the checker and Dolt would see different statements.
            raise _refuse(*_DOUBLE_DASH)


def _check_function(name: str) -> None:
    if name in _FORBIDDEN_BUILTINS:
        raise _refuse(
            f"{name.upper()}() {_FORBIDDEN_BUILTINS[name]}.",
            f"remove {name.upper()}() from the query.",
        )
    if (name.startswith("dolt_") and name not in READ_ONLY_DOLT_FUNCTIONS) or (
        name in _DOLT_WRITERS
    ):
        allowed = ", ".join(sorted(READ_ONLY_DOLT_FUNCTIONS))
        raise _refuse(
            f"{name}() is not one of Dolt's read-only functions ({allowed}).",
            f"{_WRITE_ELSEWHERE} System tables such as dolt_log, dolt_branches, "
            "dolt_diff_<table> and dolt_history_<table> can be read with SELECT.",
        )


def _parse(sql: str, tokens: list[Token]) -> exp.Expr:
    try:
        parsed = _DIALECT.parser().parse(tokens, sql)
    except SqlglotError as exc:
        raise _refuse(
            "the query could not be parsed as one SELECT, so it is not run "
            f"({str(exc).splitlines()[0]}).",
            f"check the syntax and {_ONE_SELECT}. MySQL syntax the checker does not know is "
            "refused rather than run unchecked: rewrite it with common SQL.",
        ) from exc
    statements = [p for p in parsed if p is not None]
    if len(statements) != 1:  # _statement_tokens already counted; keep the parser honest
        raise _refuse("the query is not exactly one statement.", f"{_ONE_SELECT}.")
    return statements[0]


def _check_start(tokens: list[Token]) -> None:
    if tokens[0].token_type not in _SELECT_STARTS:
        raise _refuse_statement(tokens[0].text.upper())


def _check_tree(tree: exp.Expr) -> None:
    root = tree.unnest() if isinstance(tree, exp.Subquery) else tree
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        # `WITH x AS (...) DELETE ...` starts like a SELECT; name what it really is.
        kind = root.this if isinstance(root, exp.Command) else root.key
        raise _refuse_statement(str(kind).upper())
    for node in tree.walk():
        if isinstance(node, exp.Lock):
            raise _refuse(
                "FOR UPDATE / FOR SHARE / LOCK IN SHARE MODE take row locks for a write.",
                "remove the locking clause; the query reads a committed version.",
            )
        if isinstance(node, exp.Into):
            raise _refuse(
                "SELECT ... INTO writes the result to a table, file or variables.",
                "remove the INTO clause; the dataset returns the result as a DataFrame.",
            )
        if isinstance(node, (exp.DML, exp.DDL, exp.Command, exp.Use, exp.Set)):
            raise _refuse_statement(node.key.upper())


def _render(sql: str, tokens: list[Token]) -> str:
    """The statement rebuilt from its tokens' own text, comments dropped."""
    parts = [sql[tokens[0].start : tokens[0].end + 1]]
    for before, token in itertools.pairwise(tokens):
        text = sql[token.start : token.end + 1]
        gap = sql[before.end + 1 : token.start]
        # Keep tokens that touched touching (`_utf8mb4'x'`, `a.b`, `x'AB'`), except where the
        # join would open or close a comment for Dolt (`--` is refused earlier; a guard).
        joined = parts[-1][-1:] + text[:1]
        parts.append(("" if not gap and joined not in ("--", "/*", "*/") else " ") + text)
    return "".join(parts)


def read_only_statement(sql: str) -> str:
    """The one read-only SELECT in ``sql``, ready to run; a ``DoltError`` for anything else.

    The error says what was refused and how to write the query instead.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise _refuse("the query is empty.", f"set sql: {_ONE_SELECT}.")
    every = _tokens(sql)
    tokens = _statement_tokens(every)
    _check_start(tokens)  # first: sqlglot swallows the rest of a CALL ... into one token
    _check_comments(sql, every)
    _check_tokens(tokens)
    _check_tree(_parse(sql, tokens))
    return _render(sql, tokens)


_UNPINNED_FUNCTIONS = frozenset(
    {
        "rand",
        "uuid",
        "currentdate",
        "currenttime",
        "currenttimestamp",
        "currentdatetime",
        "currentuser",
        "currentschema",
        "unixtimestamp",
        "timestamptrunc",
    }
)


def tables_read(sql: str) -> list[str] | None:
    """The tables of its own database a checked query reads (lower case, sorted); None when
    it reads anything a table version at its ref does not pin: another database or branch
    (`` `db/b`.t ``), ``AS OF``, a table function (``dolt_diff(...)``)."""
    tree = _parse(sql, _statement_tokens(_tokens(sql)))
    for call in tree.find_all(exp.Func):
        # Functions sqlglot does not know (dolt_hashof(), active_branch(), ...) may read
        # branches or the session; clocks and random numbers change by themselves.
        if isinstance(call, exp.Anonymous) or call.key in _UNPINNED_FUNCTIONS:
            return None
    ctes = {cte.alias.lower() for cte in tree.find_all(exp.CTE)}
    names: set[str] = set()
    for table in tree.find_all(exp.Table):
        pinned = not (
            table.args.get("db") or table.args.get("catalog") or table.args.get("version")
        )
        if not pinned or not isinstance(table.this, exp.Identifier):
            return None
        if table.name.lower() not in ctes:
            names.add(table.name.lower())
    return sorted(names)


# How long a query waits for a writer (a save, another dolt process) to finish; a
# `dolt sql-server` or an open `dolt sql` shell holds the lock for as long as it runs.
STORAGE_LOCK_TIMEOUT = 10.0


@contextlib.contextmanager
def storage_read_only(database: Path, *, timeout: float = STORAGE_LOCK_TIMEOUT) -> Iterator[None]:
    """Make every ``dolt`` process started in the block open ``database`` read-only.

    Dolt locks ``.dolt/noms/LOCK`` exclusively (100 ms timeout) and, failing that, opens the
    chunk store read-only: writes fail with "database is read only". A shared lock held here
    is what it fails on; shared, so concurrent queries still run side by side. If another
    process already holds the lock exclusively, this waits for it rather than race it: a
    ``dolt`` started the moment that holder exits would open the repository for writing, and
    while a ``dolt sql-server`` holds it the CLI would send the query to that server.
    """
    path = database / ".dolt" / "noms" / "LOCK"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DoltError(
            f"Cannot open {path} to run the query read-only: {exc.strerror}.",
            fix="check that the repository exists and is readable.",
        ) from exc
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise DoltError(
                        f"Another process has held {database} open for writing for over "
                        f"{timeout:g} s (a `dolt sql-server`, an open `dolt sql` shell or a "
                        "long save), so the query cannot run where Dolt opens it read-only.",
                        fix="stop that process or retry when it is done.",
                    ) from exc
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the flock
