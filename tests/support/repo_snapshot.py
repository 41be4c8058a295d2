"""Snapshots of a Dolt repository read with the plain ``dolt`` CLI, never through kedro_dolt.

A :class:`RepoSnapshot` is everything a user could notice changed: branch heads, tags, the
checked-out branch, ``dolt_status`` (the user's uncommitted work), remotes, merge state and the
full content (schema and rows) of every table in every branch's working set and staged root.
Take one before an operation and compare after it::

    before = snapshot(repo)
    ...  # something that must not change the repository
    assert_unchanged(repo, before)

A snapshot costs three ``dolt`` starts, or one when given a ``hint`` (an earlier snapshot of
the same or an identical repository) whose branches and tables still match;
:func:`assert_unchanged` passes ``before`` as the hint. :func:`files_snapshot` does the same
for a plain directory (e.g. a user's files next to which a remote must not write).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = [
    "DoltFailed",
    "RepoSnapshot",
    "TableContent",
    "assert_files_unchanged",
    "assert_unchanged",
    "diff_snapshots",
    "files_snapshot",
    "run_dolt",
    "snapshot",
]

Row = dict[str, Any]
#: Per branch: its working set's tables with their column counts, and its staged tables.
Layout = Mapping[str, tuple[tuple[tuple[str, int], ...], tuple[str, ...]]]
Tables = dict[str, dict[str, "TableContent"]]


class DoltFailed(AssertionError):
    """A ``dolt`` command run by the snapshot helpers exited non-zero."""


def run_dolt(repo: Path, *args: str, stdin: str | None = None) -> str:
    """Run the real ``dolt`` binary in ``repo`` and return stdout; raise :class:`DoltFailed`.

    ``$KEDRO_DOLT_BINARY`` names the binary when set, as for kedro-dolt itself.
    """
    binary = os.environ.get("KEDRO_DOLT_BINARY") or "dolt"
    proc = subprocess.run(
        [binary, *args], cwd=repo, input=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise DoltFailed(f"dolt {' '.join(args)} failed: {proc.stderr or proc.stdout}")
    return proc.stdout


@dataclass(frozen=True)
class TableContent:
    """One table in one root: its ``SHOW CREATE TABLE`` text and its rows.

    ``rows`` are canonical JSON strings (Dolt's JSON omits NULL columns). Working-set rows
    come from ``SELECT * ... ORDER BY`` every column, in that order; staged rows are sorted.
    """

    create: str
    rows: tuple[str, ...]


@dataclass(frozen=True)
class RepoSnapshot:
    """What the plain ``dolt`` CLI shows of a repository (see the module docstring).

    ``working`` maps each branch to its working set's tables and ``staged`` to its staged
    root's tables. ``errors`` holds branches whose roots could not be read (e.g. a name Dolt
    cannot address as a revision database). ``database`` is the SQL database name and
    ``layout`` the table listing used to read the contents (both compared like the rest).
    """

    database: str
    checked_out: str
    branches: Mapping[str, str]
    dirty: frozenset[str]
    tags: Mapping[str, tuple[str, str]]
    status: tuple[tuple[str, bool, str], ...]
    remotes: Mapping[str, tuple[str, str, str]]
    merge_status: tuple[str, ...]
    layout: Layout
    working: Mapping[str, Mapping[str, TableContent]]
    staged: Mapping[str, Mapping[str, TableContent]]
    errors: Mapping[str, str]


# --- reading ---------------------------------------------------------------------------------

_META = (
    "SELECT active_branch() AS b, database() AS db;\n"
    "SELECT name, hash, dirty FROM dolt_branches ORDER BY name;\n"
    "SELECT tag_name, tag_hash, message FROM dolt_tags ORDER BY tag_name;\n"
    "SELECT table_name, staged, status FROM dolt_status ORDER BY table_name, staged;\n"
    "SELECT name, url, fetch_specs, params FROM dolt_remotes ORDER BY name;\n"
    "SELECT * FROM dolt_merge_status;\n"
)
_META_RESULTS = 6


def _sql_results(repo: Path, script: str) -> list[list[Row]]:
    """One list of rows per statement of ``script`` that returns a result set."""
    out = run_dolt(repo, "sql", "-r", "json", stdin=script)
    return [json.loads(line).get("rows", []) for line in out.splitlines() if line.strip()]


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _canonical(row: Row) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _use(db: str, branch: str) -> str:
    return f"USE {_ident(f'{db}/{branch}')};"


def _listing_script(db: str, branches: Sequence[str]) -> str:
    """Two result sets per branch: working tables with column counts, staged tables."""
    parts = []
    for branch in branches:
        parts.append(_use(db, branch))
        parts.append(
            "SELECT table_name AS t, COUNT(*) AS n FROM information_schema.columns "
            "WHERE table_schema = database() GROUP BY table_name ORDER BY table_name;"
        )
        parts.append("SHOW FULL TABLES AS OF 'STAGED';")
    return "\n".join(parts)


def _parse_listing(results: Iterator[list[Row]], branches: Sequence[str]) -> Layout:
    layout = {}
    for branch in branches:
        counts, staged_rows = next(results), next(results)
        staged = sorted(
            str(v) for r in staged_rows for k, v in r.items() if k.startswith("Tables_in_")
        )
        layout[branch] = (tuple((str(r["t"]), int(r["n"])) for r in counts), tuple(staged))
    return layout


def _contents_script(db: str, layout: Layout) -> str:
    """Two result sets per table: ``SHOW CREATE TABLE`` and the rows."""
    parts = []
    for branch, (working, staged) in layout.items():
        parts.append(_use(db, branch))
        for table, ncols in working:
            order = ", ".join(str(i) for i in range(1, ncols + 1))
            parts.append(f"SHOW CREATE TABLE {_ident(table)};")
            parts.append(f"SELECT * FROM {_ident(table)} ORDER BY {order};")
        for table in staged:
            parts.append(f"SHOW CREATE TABLE {_ident(table)} AS OF 'STAGED';")
            parts.append(f"SELECT * FROM {_ident(table)} AS OF 'STAGED';")
    return "\n".join(parts)


def _parse_contents(results: Iterator[list[Row]], layout: Layout) -> tuple[Tables, Tables]:
    working: Tables = {}
    staged: Tables = {}
    for branch, (working_tables, staged_tables) in layout.items():
        working[branch] = {}
        for table, _ in working_tables:
            create = str(next(results)[0]["Create Table"])
            rows = tuple(_canonical(r) for r in next(results))
            working[branch][table] = TableContent(create, rows)
        staged[branch] = {}
        for table in staged_tables:
            create = str(next(results)[0]["Create Table"])
            rows = tuple(sorted(_canonical(r) for r in next(results)))
            staged[branch][table] = TableContent(create, rows)
    return working, staged


def _read_roots(
    repo: Path, db: str, branches: Sequence[str]
) -> tuple[Layout, Tables, Tables, dict[str, str]]:
    """Layout, working and staged tables of ``branches``: two dolt starts (more on errors)."""
    try:
        layout = _parse_listing(iter(_sql_results(repo, _listing_script(db, branches))), branches)
        working, staged = _parse_contents(
            iter(_sql_results(repo, _contents_script(db, layout))), layout
        )
        return layout, working, staged, {}
    except DoltFailed as exc:
        if len(branches) == 1:
            return {}, {}, {}, {branches[0]: str(exc)}
    merged_layout: dict[str, tuple[tuple[tuple[str, int], ...], tuple[str, ...]]] = {}
    working, staged, errors = {}, {}, {}
    for branch in branches:  # one by one, to find the unreadable one(s)
        lay, w, s, e = _read_roots(repo, db, [branch])
        merged_layout.update(lay)
        working.update(w)
        staged.update(s)
        errors.update(e)
    return merged_layout, working, staged, errors


def _build(
    meta: Sequence[list[Row]],
    layout: Layout,
    working: Tables,
    staged: Tables,
    errors: Mapping[str, str],
) -> RepoSnapshot:
    head, branch_rows, tag_rows, status_rows, remote_rows, merge_rows = meta
    return RepoSnapshot(
        database=str(head[0]["db"]),
        checked_out=str(head[0].get("b")),
        branches={str(r["name"]): str(r["hash"]) for r in branch_rows},
        dirty=frozenset(str(r["name"]) for r in branch_rows if r.get("dirty")),
        tags={
            str(r["tag_name"]): (str(r["tag_hash"]), str(r.get("message", ""))) for r in tag_rows
        },
        status=tuple(
            (str(r["table_name"]), bool(r.get("staged")), str(r["status"])) for r in status_rows
        ),
        remotes={
            str(r["name"]): (
                str(r.get("url")),
                json.dumps(r.get("fetch_specs"), sort_keys=True),
                json.dumps(r.get("params"), sort_keys=True),
            )
            for r in remote_rows
        },
        merge_status=tuple(sorted(_canonical(r) for r in merge_rows)),
        layout=layout,
        working=working,
        staged=staged,
        errors=dict(errors),
    )


def _snapshot_with_hint(repo: Path, hint: RepoSnapshot) -> RepoSnapshot | None:
    """One dolt start, reading the tables ``hint`` lists; ``None`` if they no longer match."""
    branches = sorted(hint.layout)
    if hint.errors or sorted(hint.branches) != branches:
        return None
    script = _META + _listing_script(hint.database, branches) + "\n"
    script += _contents_script(hint.database, hint.layout)
    try:
        results = iter(_sql_results(repo, script))
    except DoltFailed:
        return None  # e.g. a listed table is gone
    meta = [next(results) for _ in range(_META_RESULTS)]
    if meta[0][0].get("db") != hint.database or sorted(str(r["name"]) for r in meta[1]) != branches:
        return None
    if _parse_listing(results, branches) != hint.layout:
        return None
    working, staged = _parse_contents(results, hint.layout)
    return _build(meta, hint.layout, working, staged, {})


def snapshot(repo: Path, hint: RepoSnapshot | None = None) -> RepoSnapshot:
    """Read ``repo`` with the plain ``dolt`` CLI: heads, tags, checked-out branch, status,
    remotes, merge state and every table of every branch's working set and staged root.

    ``hint``: an earlier snapshot of this (or an identical) repository; when its branches
    and tables still match, the whole snapshot takes one ``dolt`` start instead of three.
    The result is the same either way.
    """
    if hint is not None:
        fast = _snapshot_with_hint(repo, hint)
        if fast is not None:
            return fast
    meta = _sql_results(repo, _META)
    db = str(meta[0][0]["db"])
    layout, working, staged, errors = _read_roots(repo, db, sorted(str(r["name"]) for r in meta[1]))
    return _build(meta, layout, working, staged, errors)


# --- comparing -------------------------------------------------------------------------------


def _diff(path: str, old: object, new: object, out: list[str]) -> None:
    if old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            if key not in old:
                out.append(f"{path}[{key!r}] added: {new[key]!r}")
            elif key not in new:
                out.append(f"{path}[{key!r}] removed (was {old[key]!r})")
            else:
                _diff(f"{path}[{key!r}]", old[key], new[key], out)
    else:
        out.append(f"{path}: {old!r} -> {new!r}")


def diff_snapshots(before: RepoSnapshot, after: RepoSnapshot) -> list[str]:
    """Human-readable differences between two snapshots (empty when equal), e.g.
    ``working['main']['keep']: TableContent(...) -> TableContent(...)``."""
    problems: list[str] = []
    for f in fields(RepoSnapshot):
        _diff(f.name, getattr(before, f.name), getattr(after, f.name), problems)
    return problems


def assert_unchanged(repo: Path, before: RepoSnapshot) -> RepoSnapshot:
    """Re-snapshot ``repo`` and fail listing every difference from ``before``."""
    after = snapshot(repo, hint=before)
    problems = diff_snapshots(before, after)
    assert not problems, "the repository changed:\n  " + "\n  ".join(problems)
    return after


def files_snapshot(directory: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of content (``"<dir>"`` for directories) under ``directory``.

    Symlinks are recorded by their target. A missing directory is ``{}``.
    """
    found: dict[str, str] = {}
    if not directory.exists():
        return found
    for path in sorted(directory.rglob("*")):
        rel = str(path.relative_to(directory))
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            found[rel] = "<dir>"
        else:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def assert_files_unchanged(directory: Path, before: Mapping[str, str]) -> None:
    """Fail listing files added, removed or changed under ``directory`` since ``before``."""
    after = files_snapshot(directory)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), (
        f"files under {directory} changed: added {added}, removed {removed}, changed {changed}"
    )
