"""The bad-input catalogue (issue 8): every bad input is refused and changes nothing.

Each case runs against a realistic repository built with the plain ``dolt`` CLI: a committed
table ``keep``, a second branch ``dev`` ahead of ``main``, tags ``v1`` and ``keep-v1``, a
remote ``backup``, and the user's uncommitted work on the checked-out branch ``main`` (an
unstaged edit in ``edited``, a ``dolt add``-ed change in ``staged``, an untracked new table
``fresh``), plus a directory of the user's own files next to it.

For each case the test asserts that:

1. a ``DatasetError`` is raised;
2. its message (without Kedro's "Failed while saving ..." wrapper) names the bad value, says
   how to fix it (``Fix: ...``) and, for failures only Dolt can detect, quotes Dolt's message;
   secrets in urls never appear;
3. the repository, read back with the plain ``dolt`` CLI (branch heads, tags, checked-out
   branch, ``dolt_status``, remotes, merge state and every table of every working set and
   staged root), is exactly as before, and so are the user's files.

The cases state the target behaviour of issue 8, not necessarily today's.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import AbstractDataset, DatasetError, Version

from kedro_dolt import (
    AppendBranch,
    DoltSQLQueryDataset,
    DoltTableDataset,
    MergeBranch,
    NewBranch,
    Remote,
)
from tests.support.repo_snapshot import (
    RepoSnapshot,
    assert_files_unchanged,
    diff_snapshots,
    files_snapshot,
    run_dolt,
    snapshot,
)

# --- the repository every case starts from ------------------------------------------------

REPO_NAME = "repo"  # also the SQL database name Dolt gives it


def _build_template(root: Path) -> Path:
    """A repository with history, a second branch, a tag, a remote and uncommitted work."""
    repo = root / REPO_NAME
    repo.mkdir()
    run_dolt(repo, "init", "-b", "main")
    run_dolt(
        repo,
        "sql",
        stdin="CREATE TABLE keep (id int PRIMARY KEY, name varchar(50));"
        "INSERT INTO keep VALUES (1, 'alpha'), (2, 'beta'), (3, NULL);"
        "CREATE TABLE edited (id int PRIMARY KEY, v double);"
        "INSERT INTO edited VALUES (1, 1.5), (2, 2.5);"
        "CREATE TABLE staged (k varchar(20) PRIMARY KEY, n bigint);"
        "INSERT INTO staged VALUES ('a', 1);",
    )
    run_dolt(repo, "add", "-A")
    run_dolt(repo, "commit", "-m", "base tables")
    run_dolt(repo, "tag", "v1", "main")
    run_dolt(repo, "tag", "keep-v1", "main")  # what save_args.tag "{table}-v1" would make
    run_dolt(repo, "checkout", "-b", "dev")
    run_dolt(repo, "sql", "-q", "INSERT INTO keep VALUES (4, 'dev only')")
    run_dolt(repo, "commit", "-am", "work on dev")
    run_dolt(repo, "checkout", "main")
    run_dolt(repo, "sql", "-q", "UPDATE keep SET name = 'alpha2' WHERE id = 1")
    run_dolt(repo, "commit", "-am", "second commit on main")
    # The user's uncommitted work, which no failed save may touch.
    run_dolt(
        repo,
        "sql",
        stdin="UPDATE edited SET v = 9.75 WHERE id = 1;"
        "INSERT INTO staged VALUES ('b', 2);"
        "CREATE TABLE fresh (x varchar(10), y int);"
        "INSERT INTO fresh VALUES ('new', 1), (NULL, 2);",
    )
    run_dolt(repo, "add", "staged")
    run_dolt(repo, "remote", "add", "backup", f"file://{root / 'backup-remote'}")
    return repo


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, dolt_home: Path) -> Path:
    """The prepared repository, built once per module (copied for each case)."""
    return _build_template(tmp_path_factory.mktemp("bad-inputs-template"))


@pytest.fixture(scope="module")
def template_snapshot(template: Path) -> RepoSnapshot:
    """The template's snapshot: the hint that lets each copy's snapshot take one dolt start."""
    return snapshot(template)


@dataclass
class World:
    """One case's copy of the repository, the user's own files, and the datasets made."""

    repo: Path
    tmp: Path
    user_dir: Path
    made: list[AbstractDataset[Any, Any]] = field(default_factory=list)

    def table(self, **kwargs: Any) -> DoltTableDataset:
        kwargs.setdefault("database", str(self.repo))
        kwargs.setdefault("table", "keep")
        dataset = DoltTableDataset(**kwargs)
        self.made.append(dataset)
        return dataset

    def query(self, **kwargs: Any) -> DoltSQLQueryDataset:
        kwargs.setdefault("database", str(self.repo))
        dataset = DoltSQLQueryDataset(**kwargs)
        self.made.append(dataset)
        return dataset


@pytest.fixture
def world(template: Path, tmp_path: Path) -> World:
    repo = tmp_path / REPO_NAME
    shutil.copytree(template, repo, symlinks=True)
    user_dir = tmp_path / "user-files"
    (user_dir / "reports").mkdir(parents=True)
    (user_dir / "notes.txt").write_text("the user's notes\n")
    (user_dir / "reports" / "q3.csv").write_text("quarter,revenue\nq3,100\n")
    return World(repo=repo, tmp=tmp_path, user_dir=user_dir)


# --- cases --------------------------------------------------------------------------------

Action = Callable[[World], object]
Check = Callable[[World], str | None]


@dataclass(frozen=True)
class Case:
    """A bad input: what to run, and what its error must say.

    ``says``: regexes the explanation must match (the bad value, what is wrong);
    ``dolt_says``: a regex of Dolt's own message, for failures that only Dolt detects;
    ``forbid``: text that must never appear (secrets); ``after``: extra post-conditions,
    each returning a problem or ``None``.
    """

    id: str
    run: Action
    says: tuple[str, ...]
    dolt_says: str | None = None
    forbid: tuple[str, ...] = ()
    after: tuple[Check, ...] = ()


def lit(value: object) -> str:
    """A regex matching ``value`` as it may appear in a message: its repr, or (for a
    non-empty string without surrounding whitespace) its escaped or raw text. So an empty
    value, or one whose problem is a leading or trailing space, must be shown quoted."""
    if not isinstance(value, str):
        return rf"(?<!\w){re.escape(repr(value))}(?!\w)"
    options = [re.escape(repr(value))]
    if isinstance(value, str) and value and value == value.strip():
        options.append(re.escape(repr(value)[1:-1]))  # escaped, inside other quotes
        if value.isprintable():
            options.append(re.escape(value))
    return "(?:" + "|".join(options) + ")"


def good() -> pd.DataFrame:
    return pd.DataFrame({"id": np.array([1, 2], dtype="int64"), "name": ["x", "y"]})


def with_v(values: Any, **kwargs: Any) -> Callable[[], pd.DataFrame]:
    """A frame ``id, v`` whose ``v`` column is ``pd.Series(values, **kwargs)``."""

    def make() -> pd.DataFrame:
        v = pd.Series(values, **kwargs)
        return pd.DataFrame({"id": np.arange(1, len(v) + 1, dtype="int64"), "v": v})

    return make


def save(frame: Callable[[], Any] = good, **kwargs: Any) -> Action:
    """Build a ``DoltTableDataset`` with ``kwargs`` (default table ``keep``) and save."""

    def action(w: World) -> None:
        w.table(**kwargs).save(frame())

    return action


def load(**kwargs: Any) -> Action:
    """Build a ``DoltTableDataset`` with ``kwargs`` (default table ``keep``) and load."""

    def action(w: World) -> None:
        w.table(**kwargs).load()

    return action


def query(sql: Any, **kwargs: Any) -> Action:
    def action(w: World) -> None:
        w.query(sql=sql, **kwargs).load()

    return action


def no_file(relative: str) -> Check:
    """The post-condition that ``relative`` (under the case's tmp dir) was not created."""

    def check(w: World) -> str | None:
        path = w.tmp / relative
        return f"{path} was created" if path.exists() or path.is_symlink() else None

    return check


FIX = "Fix:"
KEY_PK = {"primary_key": "id"}
#: Dolt's own words for a ref, branch or commit that does not exist.
NOT_FOUND = (
    r"(?i)branch not found|database not found|invalid ref spec|invalid ancestor spec"
    r"|is not a commit|not a valid branch or hash|could not be found|not found: "
)


def _cases_table() -> list[Case]:
    names: list[tuple[str, Any]] = [
        ("dash-hard", "--hard"),
        ("dash-A", "-A"),
        ("dash-x", "-x"),
        ("dash-force", "--force"),
        ("dash-only", "-"),
        ("single-quote", "ke'ep"),
        ("double-quote", 'ke"ep'),
        ("backtick", "ke`ep"),
        ("semicolon", "keep;x"),
        ("injection", "keep`; DROP TABLE keep; -- "),
        ("dolt-prefix", "dolt_log"),
        ("dolt-prefix-upper", "DOLT_status"),
        ("unicode", "tablé"),
        ("cjk", "数据"),
        ("nul", "ke\x00ep"),
        ("newline", "ke\nep"),
        ("tab", "ke\tep"),
        ("65-chars", "t" * 65),
        ("empty", ""),
        ("whitespace-only", "   "),
        ("leading-space", " keep"),
        ("trailing-space", "keep "),
        ("int", 5),
        ("none", None),
    ]
    cases = [
        Case(f"table-{tid}-save", save(table=name, save_args=KEY_PK), (lit(name), "(?i)table"))
        for tid, name in names
    ]
    cases += [
        Case("table-dash-hard-load", load(table="--hard"), (lit("--hard"), "(?i)table")),
        Case("table-dash-A-load", load(table="-A"), (lit("-A"), "(?i)table")),
        Case(
            "table-missing-load",
            load(table="nosuch"),
            (lit("nosuch"),),
            dolt_says=r"(?i)table not found|nosuch",
        ),
        Case(
            "table-missing-at-ref-load",
            load(table="fresh", ref="v1"),
            (lit("fresh"), lit("v1")),
            dolt_says=r"(?i)not found",
        ),
    ]
    return cases


def _cases_columns() -> list[Case]:
    def cols(*names: Any) -> Callable[[], pd.DataFrame]:
        def make() -> pd.DataFrame:
            frame = pd.DataFrame([[i + 1] + [f"v{i}"] * (len(names) - 1) for i in range(2)])
            frame.columns = pd.Index(list(names), dtype=object)
            return frame

        return make

    def multi() -> pd.DataFrame:
        frame = pd.DataFrame([[1, "a"], [2, "b"]])
        frame.columns = pd.MultiIndex.from_tuples([("id", ""), ("name", "x")])
        return frame

    return [
        Case("col-differ-by-case", save(cols("id", "name", "NAME")), (lit("NAME"),)),
        Case("col-trailing-space-pair", save(cols("id", "a ", "a")), (lit("a "),)),
        Case("col-trailing-space-pair-rev", save(cols("id", "a", "a ")), (lit("a "),)),
        Case("col-trailing-space-alone", save(cols("id", "name ")), (lit("name "),)),
        Case("col-duplicate", save(cols("id", "name", "name")), (lit("name"), "(?i)duplicate")),
        Case("col-non-string", save(cols(0, 1)), (r"\b0\b", "(?i)column")),
        Case("col-mixed-non-string", save(cols("id", 7)), (r"\b7\b", "(?i)column")),
        Case("col-none", save(cols("id", None)), (r"None", "(?i)column")),
        Case("col-multiindex", save(multi), (r"(?i)column",)),
        Case("col-empty", save(cols("id", "")), (r"''", "(?i)column")),
        Case("col-whitespace-only", save(cols("id", "  ")), (lit("  "), "(?i)column")),
        Case("col-nul", save(cols("id", "na\x00me")), (lit("na\x00me"),)),
        Case("col-newline", save(cols("id", "na\nme")), (lit("na\nme"),)),
        Case("col-65-chars", save(cols("id", "c" * 65)), (lit("c" * 65),)),
        Case("zero-columns-empty", save(pd.DataFrame), (r"(?i)column",)),
        Case(
            "zero-columns-with-rows",
            save(lambda: pd.DataFrame(index=range(3))),
            (r"(?i)column",),
        ),
        Case("zero-columns-with-key", save(pd.DataFrame, save_args=KEY_PK), (r"(?i)column",)),
    ]


def _cases_primary_key() -> list[Case]:
    def pk(value: Any) -> Action:
        return save(save_args={"primary_key": value})

    return [
        Case("pk-int", pk(1), ("primary_key", r"\b1\b")),
        Case("pk-list-of-int", pk([1]), ("primary_key", r"\b1\b")),
        Case("pk-missing-column", pk("nope"), ("primary_key", lit("nope"))),
        Case("pk-one-missing-of-two", pk(["id", "nope"]), ("primary_key", lit("nope"))),
        Case("pk-empty-string", pk(""), ("primary_key", "''")),
        Case("pk-listed-twice", pk(["id", "id"]), ("primary_key", lit("id"))),
        Case("pk-dict", pk({"id": True}), ("primary_key",)),
    ]


def _cases_data() -> list[Case]:
    def frame(**columns: Any) -> Callable[[], pd.DataFrame]:
        return lambda: pd.DataFrame(columns)

    dup = frame(id=np.array([1, 1, 2], dtype="int64"), name=["a", "b", "c"])
    return [
        Case("dup-pk", save(dup, save_args=KEY_PK), (lit("id"), "(?i)duplicate")),
        Case(
            "dup-pk-composite",
            save(
                frame(a=[1, 1], b=["x", "x"], c=[1.0, 2.0]),
                save_args={"primary_key": ["a", "b"]},
            ),
            (lit("a"), lit("b"), "(?i)duplicate"),
        ),
        Case(
            "dup-pk-into-table-with-unstaged-edits",
            save(dup, table="edited", save_args=KEY_PK),
            (lit("id"), "(?i)duplicate"),
        ),
        Case(
            "dup-pk-into-table-with-staged-change",
            save(dup, table="staged", save_args=KEY_PK),
            (lit("id"), "(?i)duplicate"),
        ),
        Case(
            "dup-pk-into-untracked-table",
            save(dup, table="fresh", save_args=KEY_PK),
            (lit("id"), "(?i)duplicate"),
        ),
        Case(
            "dup-pk-append-to-other-branch",
            save(dup, branch="dev", save_args=KEY_PK),
            (lit("id"), "(?i)duplicate"),
        ),
        Case(
            "dup-pk-new-branch-strategy",
            save(
                dup,
                branch={"strategy": "new", "name": "exp", "start_point": "main"},
                save_args=KEY_PK,
            ),
            (lit("id"), "(?i)duplicate"),
        ),
        Case(
            "dup-pk-merge-strategy",
            save(
                dup, branch={"strategy": "merge", "from": "dev", "into": "main"}, save_args=KEY_PK
            ),
            (lit("id"), "(?i)duplicate"),
        ),
        Case(
            "inf-merge-strategy-into-other-branch",
            save(with_v([np.inf, 1.0]), branch={"strategy": "merge", "from": "v1", "into": "dev"}),
            (lit("v"), "(?i)inf"),
        ),
        Case(
            "null-in-key-new-branch-from-tag",
            save(
                frame(id=pd.array([None, 2], dtype="Int64"), name=["a", "b"]),
                branch={"strategy": "new", "name": "exp", "start_point": "v1"},
                save_args=KEY_PK,
            ),
            (lit("id"), "(?i)null|missing|NA"),
        ),
        Case(
            "null-in-key-Int64",
            save(frame(id=pd.array([1, None], dtype="Int64"), name=["a", "b"]), save_args=KEY_PK),
            (lit("id"), "(?i)null|missing|NA"),
        ),
        Case(
            "null-in-key-float",
            save(frame(id=[1.0, np.nan], name=["a", "b"]), save_args=KEY_PK),
            (lit("id"), "(?i)null|missing|NaN"),
        ),
        Case(
            "null-in-key-str-into-staged",
            save(frame(k=["a", None], n=[1, 2]), table="staged", save_args={"primary_key": "k"}),
            (lit("k"), "(?i)null|missing|None"),
        ),
        Case("inf-float", save(with_v([1.0, np.inf])), (lit("v"), "(?i)inf")),
        Case("minus-inf-float", save(with_v([-np.inf, 1.0])), (lit("v"), "(?i)inf")),
        Case(
            "inf-float32-into-untracked-table",
            save(with_v([np.inf, 1.0], dtype="float32"), table="fresh"),
            (lit("v"), "(?i)inf"),
        ),
        Case(
            "inf-into-table-with-unstaged-edits",
            save(with_v([1.0, np.inf]), table="edited", save_args=KEY_PK),
            (lit("v"), "(?i)inf"),
        ),
        Case(
            "lone-surrogate",
            save(with_v(["ok", "bad\ud800"], dtype=object)),
            (lit("v"), r"(?i)surrogate|utf-?8|unicode|encod"),
        ),
        Case("not-a-frame-dict", save(lambda: {"id": [1]}), (r"dict", "(?i)DataFrame")),
        Case("not-a-frame-list", save(lambda: [[1, "a"]]), (r"list", "(?i)DataFrame")),
        Case("not-a-frame-series", save(lambda: pd.Series([1, 2])), (r"Series", "(?i)DataFrame")),
        Case("not-a-frame-ndarray", save(lambda: np.zeros((2, 2))), (r"ndarray", "(?i)DataFrame")),
    ]


def _cases_dtypes() -> list[Case]:
    def sparse() -> pd.DataFrame:
        return pd.DataFrame({"id": [1, 2], "v": pd.arrays.SparseArray([0, 1])})

    dtypes: list[tuple[str, Callable[[], pd.DataFrame], str]] = [
        ("category", with_v(["a", "b"], dtype="category"), "(?i)categor"),
        ("sparse", sparse, "(?i)sparse"),
        ("complex", with_v([1 + 2j, 3j]), "(?i)complex"),
        ("timedelta", with_v(pd.to_timedelta(["1D", "2h"])), "(?i)timedelta"),
        ("period", with_v(pd.period_range("2026-01", periods=2, freq="M")), "(?i)period"),
        ("interval", with_v(pd.interval_range(0, 2)), "(?i)interval"),
        ("object-mixed", with_v([1, "a"], dtype=object), "(?i)mixed|object"),
        ("object-bytes", with_v([b"a", b"b"], dtype=object), "(?i)bytes"),
        ("object-dicts", with_v([{"a": 1}, {"b": 2}], dtype=object), "(?i)dict|mixed|object"),
        ("object-lists", with_v([[1], [2]], dtype=object), "(?i)list|mixed|object"),
        ("object-huge-ints", with_v([2**70, 1], dtype=object), "(?i)integer|object"),
        ("object-decimal-and-str", with_v([1.5, "x"], dtype=object), "(?i)mixed|object"),
    ]
    cases = [Case(f"dtype-{tid}", save(make), (lit("v"), what)) for tid, make, what in dtypes]
    cases.append(
        Case(
            "dtype-category-key",
            save(
                lambda: pd.DataFrame({"id": pd.Categorical([1, 2]), "name": ["a", "b"]}),
                save_args=KEY_PK,
            ),
            (lit("id"), "(?i)categor"),
        )
    )
    return cases


def _cases_branch() -> list[Case]:
    names: list[tuple[str, Any]] = [
        ("dash-hard", "--hard"),
        ("dash-A", "-A"),
        ("dash-x", "-x"),
        ("dash-force", "--force"),
        ("empty", ""),
        ("whitespace-only", "  "),
        ("leading-space", " main"),
        ("trailing-space", "main "),
        ("inner-space", "ma in"),
        ("double-dot", "a..b"),
        ("lock-suffix", "x.lock"),
        ("semicolon", "main;x"),
        ("quote", "ma'in"),
        ("backtick", "ma`in"),
        ("unicode", "zwëig"),
        ("homoglyph", "m\u0430in"),  # Cyrillic a
        ("newline", "ma\nin"),
        ("nul", "ma\x00in"),
        ("256-chars", "b" * 256),
        ("ancestor", "main~1"),
        ("int", 5),
    ]
    cases = [
        Case(f"branch-{tid}-save", save(branch=name), (lit(name), "(?i)branch"))
        for tid, name in names
    ]
    cases += [
        Case("branch-list", save(branch=["main"]), (r"\['main'\]", "(?i)branch")),
        Case("branch-float", save(branch=3.5), (r"3\.5", "(?i)branch")),
        Case(
            "branch-missing-append",
            save(branch="nope"),
            (lit("nope"), "(?i)branch"),
            dolt_says=NOT_FOUND,
        ),
        Case("branch-dash-load", load(branch="-A"), (lit("-A"), "(?i)branch")),
    ]
    return cases


def _cases_strategy() -> list[Case]:
    def strategy(**config: Any) -> Action:
        return save(branch=config)

    def obj(make: Callable[[], Any]) -> Action:
        def action(w: World) -> None:
            w.table(table="keep", branch=make()).save(good())

        return action

    before_first = "main@{2000-01-01}"
    return [
        Case("strategy-unknown", strategy(strategy="rebase", name="x"), (lit("rebase"),)),
        Case(
            "strategy-merge-missing-into",
            strategy(strategy="merge", **{"from": "dev"}),
            (r"into",),
        ),
        Case("strategy-new-missing-name", strategy(strategy="new"), (r"name",)),
        Case("strategy-unknown-key", strategy(strategy="append", nmae="main"), (lit("nmae"),)),
        Case(
            "strategy-on-conflict-bad",
            strategy(strategy="merge", into="main", on_conflict="mine", **{"from": "dev"}),
            (lit("mine"), "on_conflict"),
        ),
        Case(
            "strategy-on-conflict-none",
            strategy(strategy="merge", into="main", on_conflict=None, **{"from": "dev"}),
            (r"None", "on_conflict"),
        ),
        Case(
            "strategy-new-name-dash",
            strategy(strategy="new", name="--hard", start_point="main"),
            (lit("--hard"),),
        ),
        Case(
            "strategy-new-start-dash",
            strategy(strategy="new", name="exp", start_point="--hard"),
            (lit("--hard"), "start_point"),
        ),
        Case(
            "strategy-new-start-missing",
            strategy(strategy="new", name="exp", start_point="nope"),
            (lit("nope"),),
            dolt_says=NOT_FOUND,
        ),
        Case(
            "strategy-new-start-before-first-commit",
            strategy(strategy="new", name="exp", start_point=before_first),
            (lit(before_first),),
        ),
        Case(
            "strategy-merge-from-dash",
            strategy(strategy="merge", into="main", **{"from": "--force"}),
            (lit("--force"),),
        ),
        Case(
            "strategy-merge-into-dash",
            strategy(strategy="merge", into="-x", **{"from": "dev"}),
            (lit("-x"),),
        ),
        Case(
            "strategy-merge-from-missing",
            strategy(strategy="merge", into="main", **{"from": "nope"}),
            (lit("nope"),),
            dolt_says=NOT_FOUND,
        ),
        Case(
            "strategy-merge-into-missing",
            strategy(strategy="merge", into="nope", **{"from": "dev"}),
            (lit("nope"),),
            dolt_says=NOT_FOUND,
        ),
        Case(
            "strategy-merge-from-before-first-commit",
            strategy(strategy="merge", into="dev", **{"from": before_first}),
            (lit(before_first),),
        ),
        Case("strategy-object-append-dash", obj(lambda: AppendBranch("-A")), (lit("-A"),)),
        Case(
            "strategy-object-new-start-dash",
            obj(lambda: NewBranch("exp", start_point="-x")),
            (lit("-x"),),
        ),
        Case(
            "strategy-object-merge-into-dash",
            obj(lambda: MergeBranch("dev", "--hard")),
            (lit("--hard"),),
        ),
        Case(
            "strategy-object-merge-on-conflict",
            obj(lambda: MergeBranch("dev", "main", on_conflict="both")),
            (lit("both"),),
        ),
    ]


def _cases_ref() -> list[Case]:
    bad: list[tuple[str, Any]] = [
        ("dash-hard", "--hard"),
        ("dash-A", "-A"),
        ("dash-x", "-x"),
        ("empty", ""),
        ("whitespace-only", "  "),
        ("range", "main..dev"),
        ("semicolon", "main;x"),
        ("quote", "ma'in"),
        ("injection", "main'); CALL dolt_reset('--hard'); -- "),
        ("nul", "ma\x00in"),
        ("newline", "ma\nin"),
        ("not-a-time", "main@{yesterday}"),
        ("int", 5),
    ]
    cases = [Case(f"ref-{tid}", load(ref=ref), (lit(ref), "(?i)ref")) for tid, ref in bad]
    unknown: list[tuple[str, str]] = [
        ("missing-branch", "nope"),
        ("missing-tag", "v9"),
        ("beyond-history", "main~999"),
        ("missing-hash", "0123456789abcdefghijklmnopqrstuv"),
    ]
    cases += [
        Case(f"ref-{tid}", load(ref=ref), (lit(ref),), dolt_says=NOT_FOUND) for tid, ref in unknown
    ]
    times = [
        ("time-before-first-commit", "main@{2000-01-01}"),
        ("time-before-first-commit-dev", "dev@{1999-12-31 23:59:59}"),
        ("time-own-branch-before-first-commit", "@{2000-01-01 00:00:00}"),
    ]
    cases += [Case(f"ref-{tid}", load(ref=ref), (lit(ref),)) for tid, ref in times]
    return cases


def _cases_version() -> list[Case]:
    run_id = "2020-01-01T00.00.00.000Z"
    impossible = "2020-13-45T99.99.99.999Z"
    return [
        Case(
            "version-unknown-run-id",
            load(version=Version(load=run_id, save=None)),
            (re.escape(run_id),),
        ),
        Case(
            "version-unknown-run-id-on-branch",
            load(branch="dev", version=Version(load=run_id, save=None)),
            (re.escape(run_id),),
        ),
        Case(
            "version-impossible-run-id",
            load(version=Version(load=impossible, save=None)),
            (re.escape(impossible),),
        ),
        Case("version-dash", load(version=Version(load="--hard", save=None)), (lit("--hard"),)),
        Case(
            "version-missing-ref",
            load(version=Version(load="nope", save=None)),
            (lit("nope"),),
            dolt_says=NOT_FOUND,
        ),
    ]


def _cases_tag() -> list[Case]:
    def tag(value: Any) -> Action:
        return save(save_args={"primary_key": "id", "tag": value})

    return [
        Case("tag-dash-force", tag("--force"), (lit("--force"), "(?i)tag")),
        Case("tag-dash-x", tag("-x"), (lit("-x"), "(?i)tag")),
        Case("tag-dash-d", tag("-d"), (lit("-d"), "(?i)tag")),
        Case("tag-leading-space", tag(" v2"), (r"v2", "(?i)tag")),
        Case("tag-exists", tag("v1"), (lit("v1"), "(?i)exists")),
        Case("tag-exists-by-template", tag("{table}-v1"), (lit("keep-v1"), "(?i)exists")),
        Case("tag-unknown-placeholder", tag("{nope}"), (r"nope", "(?i)tag")),
        Case("tag-unbalanced-brace", tag("{run_id"), (r"\{run_id", "(?i)tag")),
        Case("tag-positional-placeholder", tag("v{0}"), (r"\{0\}", "(?i)tag")),
        Case("tag-double-dot", tag("a..b"), (lit("a..b"), "(?i)tag")),
        Case("tag-semicolon", tag("t;x"), (lit("t;x"), "(?i)tag")),
        Case("tag-nul", tag("t\x00x"), (lit("t\x00x"), "(?i)tag")),
        Case("tag-dict", tag({"name": "v2"}), ("(?i)tag",)),
    ]


def _cases_commit_message() -> list[Case]:
    def message(value: Any) -> Action:
        return save(save_args={"primary_key": "id", "commit_message": value})

    return [
        Case("message-nul", message("refresh\x00now"), (lit("refresh\x00now"), "(?i)message")),
        Case("message-int", message(5), (r"\b5\b", "(?i)message")),
        Case("message-list", message(["a", "b"]), (r"\['a', 'b'\]", "(?i)message")),
    ]


def _cases_remote() -> list[Case]:
    secret = "s3cretTOKEN"

    def remote(value: Any, *, table_kwargs: dict[str, Any] | None = None) -> Action:
        return save(remote=value, **(table_kwargs or {}))

    def remote_at(make_url: Callable[[World], str], *, loading: bool = False) -> Action:
        def action(w: World) -> None:
            dataset = w.table(remote={"name": "origin", "url": make_url(w)})
            if loading:
                dataset.load()
            else:
                dataset.save(good())

        return action

    def user_dir_url(w: World) -> str:
        return f"file://{w.user_dir}"

    def user_file_url(w: World) -> str:
        return f"file://{w.user_dir / 'notes.txt'}"

    return [
        Case("remote-name-dash-x", remote({"name": "-x", "url": "file:///tmp/r"}), (lit("-x"),)),
        Case(
            "remote-name-dash-force",
            remote({"name": "--force", "url": "file:///tmp/r"}),
            (lit("--force"),),
        ),
        Case("remote-name-empty", remote({"name": "", "url": "file:///tmp/r"}), (r"''",)),
        Case("remote-name-space", remote({"name": "a b", "url": "file:///tmp/r"}), (lit("a b"),)),
        Case("remote-name-object-dash", _remote_object_dash, (lit("-A"),)),
        Case(
            "remote-url-no-scheme",
            remote({"name": "origin", "url": "srv/dolt/warehouse"}),
            (lit("srv/dolt/warehouse"), "(?i)url"),
        ),
        Case(
            "remote-url-abs-path-no-scheme",
            remote({"name": "origin", "url": "/srv/dolt/warehouse"}),
            (lit("/srv/dolt/warehouse"), "(?i)url"),
        ),
        Case("remote-url-empty", remote({"name": "origin", "url": ""}), (r"''", "(?i)url")),
        Case("remote-url-int", remote({"name": "origin", "url": 5}), (r"\b5\b", "(?i)url")),
        Case("remote-as-string", remote("origin"), (lit("origin"), "(?i)remote")),
        Case(
            "remote-unknown-key",
            remote({"name": "origin", "uri": "file:///tmp/r"}),
            (lit("uri"),),
        ),
        Case(
            "remote-not-configured-no-url",
            remote({"name": "nope"}),
            (lit("nope"), "(?i)remote"),
        ),
        Case(
            "remote-file-url-non-dolt-dir-save",
            remote_at(user_dir_url),
            (r"user-files", "(?i)remote|dolt"),
        ),
        Case(
            "remote-file-url-non-dolt-dir-load",
            remote_at(user_dir_url, loading=True),
            (r"user-files", "(?i)remote|dolt"),
        ),
        Case(
            "remote-file-url-regular-file",
            remote_at(user_file_url),
            (r"notes\.txt", "(?i)remote|director"),
            dolt_says=r"(?i)operation not valid on a file|not a directory|file exists",
        ),
        Case(
            "remote-url-unsupported-scheme",
            remote({"name": "origin", "url": "ftp://example.invalid/db"}),
            (r"ftp://example\.invalid/db",),
            dolt_says=r"(?i)ftp|scheme|unsupported|unknown",
        ),
        Case(
            "remote-url-credentials-unreachable",
            remote({"name": "origin", "url": f"https://user:{secret}@127.0.0.1:9/org/db"}),
            (r"127\.0\.0\.1:9", "(?i)remote"),
            dolt_says=r"(?i)connection refused|unavailable",
            forbid=(secret,),
        ),
    ]


def _remote_object_dash(w: World) -> None:
    w.table(remote=Remote(name="-A", url="file:///tmp/r")).save(good())


def _cases_query() -> list[Case]:
    db = REPO_NAME
    writes: list[tuple[str, Any, str]] = [
        ("use-then-drop", f"USE `{db}`; DROP TABLE keep", r"(?i)\bUSE\b|statement"),
        ("use-branch-then-select", f"USE `{db}/dev`; SELECT * FROM keep", r"(?i)\bUSE\b|statement"),
        ("drop", "DROP TABLE keep", r"(?i)\bDROP\b"),
        ("reset-hard", "CALL dolt_reset('--hard')", r"(?i)dolt_reset|\bCALL\b"),
        ("commit", "CALL dolt_commit('-Am', 'evil')", r"(?i)dolt_commit|\bCALL\b"),
        ("branch", "CALL dolt_branch('evil')", r"(?i)dolt_branch|\bCALL\b"),
        ("checkout", "CALL dolt_checkout('dev')", r"(?i)dolt_checkout|\bCALL\b"),
        ("two-selects", "SELECT 1; SELECT 2", r"(?i)statement"),
        ("select-then-drop", "SELECT * FROM keep; DROP TABLE keep", r"(?i)statement|\bDROP\b"),
        (
            "with-then-delete",
            "WITH x AS (SELECT 1 AS a) SELECT * FROM x; DELETE FROM keep",
            r"(?i)statement|\bDELETE\b",
        ),
        ("delete", "DELETE FROM keep", r"(?i)\bDELETE\b"),
        ("insert", "INSERT INTO keep VALUES (9, 'evil')", r"(?i)\bINSERT\b"),
        ("update", "UPDATE keep SET name = 'evil'", r"(?i)\bUPDATE\b"),
        ("truncate", "TRUNCATE keep", r"(?i)\bTRUNCATE\b"),
        ("create", "CREATE TABLE evil (x int)", r"(?i)\bCREATE\b"),
        ("alter", "ALTER TABLE keep ADD COLUMN z int", r"(?i)\bALTER\b"),
        ("set", "SET @@autocommit = 0", r"(?i)\bSET\b"),
        ("comment-only", "-- nothing here", r"(?i)statement|SELECT|empty"),
        ("empty", "", r"(?i)sql"),
        ("whitespace-only", "  \n\t ", r"(?i)sql"),
        ("semicolon-only", ";", r"(?i)statement|SELECT|empty|sql"),
        ("not-a-string", 5, r"(?i)sql"),
    ]
    cases = [Case(f"query-{tid}", query(sql), (what,)) for tid, sql, what in writes]
    cases += [
        Case(
            "query-into-outfile",
            query("SELECT * FROM keep INTO OUTFILE 'leak.csv'"),
            (r"(?i)OUTFILE|INTO",),
            after=(no_file(f"{REPO_NAME}/leak.csv"), no_file("leak.csv")),
        ),
        Case(
            "query-unknown-column",
            query("SELECT nope FROM keep"),
            (r"nope",),
            dolt_says=r"(?i)could not be found|unknown|not found",
        ),
        Case(
            "query-unknown-table",
            query("SELECT * FROM nosuch"),
            (r"nosuch",),
            dolt_says=r"(?i)table not found",
        ),
        Case(
            "query-as-of-missing-ref",
            query("SELECT * FROM keep AS OF 'nope'"),
            (r"nope",),
            dolt_says=NOT_FOUND,
        ),
        Case("query-ref-dash", query("SELECT 1 AS a", ref="--hard"), (lit("--hard"), "(?i)ref")),
        Case(
            "query-ref-missing",
            query("SELECT 1 AS a", ref="nope"),
            (lit("nope"),),
            dolt_says=NOT_FOUND,
        ),
        Case("query-save", _query_save, (r"(?i)read-only",)),
    ]
    return cases


def _query_save(w: World) -> None:
    w.query(sql="SELECT * FROM keep").save(good())


def _cases_meta() -> list[Case]:
    return [
        Case("meta-table-dash-A", save(meta={"table": "-A"}), (lit("-A"), "(?i)table")),
        Case("meta-table-dash-hard", save(meta={"table": "--hard"}), (lit("--hard"),)),
        Case("meta-table-dolt-prefix", save(meta={"table": "dolt_log"}), (lit("dolt_log"),)),
        Case("meta-table-same-as-data", save(meta={"table": "keep"}), (lit("keep"),)),
        Case("meta-unknown-key", save(meta={"tabel": "runs"}), (lit("tabel"),)),
        Case(
            "meta-callback-unimportable",
            save(meta={"callback": "no_such_module_xyz:fn"}),
            (r"no_such_module_xyz",),
        ),
    ]


def _cases_path() -> list[Case]:
    def at(make_path: Callable[[World], str], *, loading: bool) -> Action:
        def action(w: World) -> None:
            dataset = w.table(database=make_path(w), table="keep")
            if loading:
                dataset.load()
            else:
                dataset.save(good())

        return action

    def a_file(w: World) -> str:
        return str(w.user_dir / "notes.txt")

    def under_a_file(w: World) -> str:
        return str(w.user_dir / "notes.txt" / "warehouse")

    def with_nul(w: World) -> str:
        return str(w.tmp / "ware\x00house")

    def missing(w: World) -> str:
        return str(w.tmp / "missing")

    def inside_dolt_dir(w: World) -> str:
        return str(w.repo / ".dolt")

    return [
        Case("path-regular-file-save", at(a_file, loading=False), (r"notes\.txt",)),
        Case("path-regular-file-load", at(a_file, loading=True), (r"notes\.txt",)),
        Case("path-under-regular-file-save", at(under_a_file, loading=False), (r"notes\.txt",)),
        Case("path-nul-save", at(with_nul, loading=False), (r"ware\\x00house|ware\x00house",)),
        Case(
            "path-missing-load",
            at(missing, loading=True),
            (r"missing",),
            after=(no_file("missing"),),
        ),
        Case("path-inside-dolt-dir-load", at(inside_dolt_dir, loading=True), (r"\.dolt",)),
        Case(
            "path-inside-dolt-dir-save",
            at(inside_dolt_dir, loading=False),
            (r"\.dolt",),
            after=(no_file(f"{REPO_NAME}/.dolt/.dolt"),),
        ),
    ]


def _cases_args() -> list[Case]:
    return [
        Case("save-args-typo", save(save_args={"primary_keys": "id"}), (lit("primary_keys"),)),
        Case(
            "save-args-unknown-mode",
            save(save_args={"primary_key": "id", "mode": "append"}),
            (lit("mode"),),
        ),
        Case(
            "save-args-list",
            save(save_args=["primary_key"]),
            (r"save_args", r"(?i)mapping|dict"),
        ),
        Case(
            "save-args-string",
            save(save_args="primary_key"),
            (r"save_args", r"(?i)mapping|dict"),
            forbid=("'_', 'a'",),  # not split into characters
        ),
        Case("load-args-typo", load(load_args={"column": ["id"]}), (lit("column"),)),
        Case(
            "load-args-string",
            load(load_args="columns"),
            (r"load_args", r"(?i)mapping|dict"),
            forbid=("'c', 'l'",),
        ),
        Case(
            "load-args-columns-string",
            load(load_args={"columns": "id"}),
            (r"columns", r"(?i)list"),
            forbid=("'i', 'd'",),
        ),
        Case("load-args-columns-empty", load(load_args={"columns": []}), (r"columns",)),
        Case("load-args-columns-unknown", load(load_args={"columns": ["nope"]}), (lit("nope"),)),
        Case(
            "load-args-columns-int",
            load(load_args={"columns": [1]}),
            (r"\b1\b", r"load_args"),
        ),
        Case(
            "load-args-columns-dash",
            load(load_args={"columns": ["--hard"]}),
            (lit("--hard"),),
        ),
    ]


CASES: list[Case] = [
    *_cases_table(),
    *_cases_columns(),
    *_cases_primary_key(),
    *_cases_data(),
    *_cases_dtypes(),
    *_cases_branch(),
    *_cases_strategy(),
    *_cases_ref(),
    *_cases_version(),
    *_cases_tag(),
    *_cases_commit_message(),
    *_cases_remote(),
    *_cases_query(),
    *_cases_meta(),
    *_cases_path(),
    *_cases_args(),
]


# --- the test -----------------------------------------------------------------------------


def explanation(error: BaseException, made: Sequence[AbstractDataset[Any, Any]]) -> str:
    """The error's text without Kedro's "Failed while saving data to dataset X." wrapper,
    whose dataset description would otherwise name every configured value for free."""
    text = str(error)
    for dataset in made:
        for verb in ("saving data to", "loading data from"):
            prefix = f"Failed while {verb} dataset {dataset!s}.\n"
            if text.startswith(prefix):
                return text[len(prefix) :]
    return text


def message_problems(case: Case, text: str) -> list[str]:
    problems = []
    if FIX not in text:
        problems.append(f"no {FIX!r} part saying how to fix it")
    problems += [f"does not match {p!r}" for p in case.says if not re.search(p, text, re.S)]
    if case.dolt_says and not re.search(case.dolt_says, text, re.S):
        problems.append(f"does not quote Dolt's message (looked for {case.dolt_says!r})")
    problems += [f"reveals {s!r}" for s in case.forbid if s in text]
    return problems


# What the harness must notice: each mutation a careless save could make, via the plain CLI.
MUTATIONS: list[tuple[str, list[list[str]], str]] = [
    ("reset-hard", [["reset", "--hard"]], "status"),
    ("stage-everything", [["add", "-A"]], "status"),
    ("commit-staged-work", [["commit", "-m", "oops"]], "branches"),
    ("new-branch", [["branch", "stray"]], "branches"),
    ("delete-tag", [["tag", "-d", "v1"]], "tags"),
    ("move-tag", [["tag", "-d", "v1"], ["tag", "v1", "dev"]], "tags"),
    ("add-remote", [["remote", "add", "other", "file:///nonexistent/other"]], "remotes"),
    (
        "edit-other-branch",
        [["--branch", "dev", "sql", "-q", "UPDATE keep SET name = 'z'"]],
        "working",
    ),
    ("null-to-empty-string", [["sql", "-q", "UPDATE fresh SET x = '' WHERE x IS NULL"]], "working"),
    ("retype-column", [["sql", "-q", "ALTER TABLE keep MODIFY name varchar(60)"]], "working"),
    (
        "change-staged-root-only",
        [
            ["sql", "-q", "UPDATE staged SET n = 5 WHERE k = 'b'"],
            ["add", "staged"],
            ["sql", "-q", "UPDATE staged SET n = 2 WHERE k = 'b'"],
        ],
        "staged",
    ),
]


@pytest.mark.parametrize(
    ("commands", "field_name"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_snapshot_notices(
    commands: list[list[str]], field_name: str, world: World, template_snapshot: RepoSnapshot
) -> None:
    """The harness is honest: every kind of change shows up, with and without a hint."""
    before = snapshot(world.repo, hint=template_snapshot)
    assert before == template_snapshot  # the copy is the template
    for command in commands:
        run_dolt(world.repo, *command)
    for after in (snapshot(world.repo, hint=before), snapshot(world.repo)):
        assert any(d.startswith(field_name) for d in diff_snapshots(before, after))


def test_user_files_are_watched(world: World) -> None:
    before = files_snapshot(world.user_dir)
    (world.user_dir / "reports" / "q3.csv").write_text("changed\n")
    with pytest.raises(AssertionError, match=r"q3\.csv"):
        assert_files_unchanged(world.user_dir, before)


def test_catalogue_is_big_enough() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 90


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(
    case: Case, world: World, template_snapshot: RepoSnapshot
) -> None:
    before = snapshot(world.repo, hint=template_snapshot)
    user_files = files_snapshot(world.user_dir)
    problems: list[str] = []
    try:
        with pytest.raises(DatasetError) as raised:
            case.run(world)
    except (Exception, pytest.fail.Exception) as exc:
        problems.append(f"expected a DatasetError, got {type(exc).__name__}: {exc}")
    else:
        text = explanation(raised.value, world.made)
        problems += [f"message {p}" for p in message_problems(case, text)]
        if problems:
            problems.append(f"the message was:\n{text}")
    after = snapshot(world.repo, hint=before)
    problems += [f"repository changed: {d}" for d in diff_snapshots(before, after)]
    try:
        assert_files_unchanged(world.user_dir, user_files)
    except AssertionError as exc:
        problems.append(str(exc))
    problems += [p for check in case.after if (p := check(world))]
    assert not problems, "\n".join(problems)
