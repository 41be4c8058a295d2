"""``DoltTableDataset``: a pandas DataFrame stored as a versioned Dolt table."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError, Version
from kedro_datasets._typing import TablePreview

from ..engine import SAVE_MODES, CommitMessage, DoltEngine, TableRead, TableSchema
from ..framework import context
from ..naming import RUN_ID_RE, run_state_ref, validate_branch, validate_ref, validate_table
from ..versioning.commits import save_trailers
from ..versioning.records import ActionRecord, CallbackMeta, emit
from ..versioning.remote import Remote, with_credentials
from ..versioning.strategies import BranchStrategy, SaveRequest, branch_strategy
from .config import dataset_engine, load_columns, merge_args, primary_key
from .layout import check_index_mode, from_table, role_columns, to_table

logger = logging.getLogger(__name__)


class DoltTableDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Saves a DataFrame as the full content of a Dolt table, one Dolt commit per change.

    Every save replaces the table's rows on the save branch and makes exactly one commit
    (none when the data is unchanged); the commit message carries lineage trailers (dataset,
    table, Kedro run id and node). Every load reads a committed version: the save branch by
    default, or any branch, tag, commit hash or ancestor (``main~2``) given as ``ref``.
    Loading never changes the repository's checked-out branch, and neither does saving to
    another branch.

    Tables are created with explicit column types from the DataFrame's dtypes and a load
    returns the same dtypes (int, float, bool, str/object, datetime64 and pandas' nullable
    Int64/boolean/string), keeping NULL apart from the empty string. The DataFrame index is
    not stored.

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        companies:
          type: kedro_dolt.DoltTableDataset
          database: data/warehouse      # a Dolt repository; created on the first save
          table: companies
          branch: main                  # where saves commit (default: checked-out branch)
          save_args:
            primary_key: id             # keeps row order and makes diffs row-level
            commit_message: "Refresh companies"

        daily_prices:
          type: kedro_dolt.DoltTableDataset
          database: data/warehouse
          table: prices
          save_args:
            mode: upsert                # insert or replace by key; append | overwrite
            primary_key: [day, ticker]

        companies_last_week:
          type: kedro_dolt.DoltTableDataset
          database: data/warehouse
          table: companies
          ref: main~7                   # a branch, tag, commit hash or ancestor
          load_args:
            columns: [id, name]

        features_experiment:
          type: kedro_dolt.DoltTableDataset
          database: data/warehouse
          table: features
          branch: {strategy: new, name: exp-42, start_point: main}   # or merge: from/into
          remote: {name: origin, url: "file:///srv/dolt/warehouse"}  # pull before, push after
          meta: {table: kedro_runs}     # lineage rows committed with the data
          versioned: true               # kedro run --load-versions features:<commit|tag|run id>

        shared_companies:               # on a dolt sql-server, for several machines
          type: kedro_dolt.DoltTableDataset
          database: warehouse           # the database on that server (created on first save)
          table: companies
          credentials: dolt_server      # conf/local/credentials.yml:
                                        #   dolt_server: {con: "mysql://kedro:${oc.env:DOLT_PASSWORD}@dolt:3306"}
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> import pandas as pd
        >>> from kedro_dolt import DoltTableDataset
        >>>
        >>> data = pd.DataFrame({"id": [1, 2], "name": ["Acme", "Globex"]})
        >>> dataset = DoltTableDataset(
        ...     database=tmp_path / "warehouse",
        ...     table="companies",
        ...     save_args={"primary_key": "id"},
        ... )
        >>> dataset.save(data)
        >>> reloaded = dataset.load()
        >>> assert data.equals(reloaded)
    """

    DEFAULT_LOAD_ARGS: ClassVar[dict[str, Any]] = {"columns": None}
    DEFAULT_SAVE_ARGS: ClassVar[dict[str, Any]] = {
        "mode": "overwrite",
        "primary_key": None,
        "commit_message": None,
        "tag": None,
        "index": "auto",
    }

    def __init__(
        self,
        *,
        database: str | os.PathLike[str] | Any,
        table: str,
        branch: str | Mapping[str, Any] | BranchStrategy | None = None,
        ref: str | None = None,
        remote: Remote | Mapping[str, Any] | None = None,
        meta: CallbackMeta | Mapping[str, Any] | str | Callable[..., Any] | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Validate the configuration; nothing here touches Dolt (kedro-viz builds every
        dataset at start-up).

        Args:
            database: Path of a local Dolt repository, created with ``dolt init`` (or cloned
                from ``remote``) on first use. Relative paths are relative to the Kedro
                project root. A ``doltcli.Dolt`` repository object also works (with the
                ``doltcli`` extra installed). With ``credentials``: the name of a database
                on the ``dolt sql-server`` they point at.
            table: The table name.
            branch: Where saves commit: a branch name, a strategy mapping or a strategy
                object (``AppendBranch``, ``NewBranch``, ``MergeBranch``). Default: the
                repository's checked-out branch.
            ref: What loads read: branch, tag, commit hash, ``X~N`` or ``X@{time}``.
                Default: the strategy's branch. ``HEAD`` means that branch's head.
            remote: A ``Remote`` or mapping ``{name, url, pull, push, user}``; the user's
                password comes from ``credentials: {remote_password: ...}``.
            meta: A ``CallbackMeta`` or mapping ``{callback: "pkg.mod:fn", table: kedro_runs}``:
                where this dataset's action records go besides the Kedro hook.
            load_args: ``columns``: a list of columns to load.
            save_args: ``mode``: ``overwrite`` (default: the table becomes the frame),
                ``append`` (insert the frame's rows; an existing key is an error) or
                ``upsert`` (insert or replace rows by primary key, keep the others);
                ``primary_key``: a column or list of columns (default: a keyless
                table whose row order is not kept); ``commit_message``: the summary line;
                ``tag``: tag each save's commit, ``{run_id}``/``{dataset}``/``{table}``
                are filled in.
            credentials: ``{con: mysql://user:password@host:port}`` (optional ``author:
                "Name <email>"`` for the commits): the database is then the one named
                ``database`` on that ``dolt sql-server``, reached over MySQL, instead of a
                local repository. The password never appears in logs, errors or ``repr``.
                ``remote_password``: the password of ``remote.user`` (CLI engine only: a
                server reads it from its own ``DOLT_REMOTE_PASSWORD``).
            version: Set by Kedro for ``versioned: true``. Its load version (from
                ``--load-versions``) is a commit hash, tag, branch or Kedro run id.
            metadata: Anything; kept for plugins such as kedro-viz, ignored by the dataset.
        """
        self._table = validate_table(table)
        self._strategy = branch_strategy(branch)
        self._remote = Remote.from_config(remote)
        self._meta = CallbackMeta.from_config(meta)
        self._ref = validate_ref(ref) if ref is not None else None
        self._version = version
        if version is not None and version.load is not None and not RUN_ID_RE.match(version.load):
            validate_ref(version.load, key="load version")
        self._load_args = merge_args(self.DEFAULT_LOAD_ARGS, load_args, name="load_args")
        self._save_args = merge_args(self.DEFAULT_SAVE_ARGS, save_args, name="save_args")
        self._load_args["columns"] = load_columns(self._load_args["columns"])
        message = self._save_args["commit_message"]
        if message is not None and (not isinstance(message, str) or "\x00" in message):
            raise DatasetError(
                f"Invalid save_args.commit_message {message!r}: a text without NUL characters "
                "is expected. Fix: give the commit's summary line as a string."
            )
        if self._meta and self._meta.table and self._meta.table.lower() == table.lower():
            raise DatasetError(
                f"meta.table {self._meta.table!r} is the dataset's own table: lineage rows "
                "would overwrite the data. Fix: give the lineage table another name, e.g. "
                "meta: {table: kedro_runs}."
            )
        self._primary_key = primary_key(self._save_args["primary_key"])
        self._save_args["index"] = check_index_mode(self._save_args["index"])
        mode = self._save_args["mode"]
        if mode not in SAVE_MODES:
            raise DatasetError(
                f"Invalid save_args.mode {mode!r}. Fix: use one of {list(SAVE_MODES)} "
                "(overwrite: the table becomes the frame; append: insert its rows; upsert: "
                "insert or replace rows by primary key)."
            )
        if mode == "upsert" and not self._primary_key:
            raise DatasetError(
                "save_args.mode upsert replaces rows by primary key, but no "
                "save_args.primary_key is set. Fix: set primary_key: <column(s)>, or use "
                "mode append or overwrite."
            )
        self._engine: DoltEngine = dataset_engine(database, credentials)
        self._remote = with_credentials(self._remote, credentials)  # its remote_password
        self.metadata = metadata

    @property
    def engine(self) -> DoltEngine:
        return self._engine

    @property
    def table(self) -> str:
        return self._table

    @property
    def pulls(self) -> bool:
        """Whether a load first pulls the branch from the remote (``remote.pull``)."""
        return self._remote is not None and bool(self._remote.pull)

    @property
    def strategy(self) -> BranchStrategy:
        return self._strategy

    def _active_strategy(self) -> tuple[BranchStrategy, str | None]:
        """The strategy to use now, and the base branch when a run-level branch applies
        (``--params dolt_branch=NAME``: branch NAME, made from the dataset's when missing)."""
        run_branch = context.run_branch()
        if run_branch is None:
            return self._strategy, None
        return self._strategy.on_run_branch(self._engine, run_branch)

    def _load_location(self, strategy: BranchStrategy) -> tuple[str, str | None]:
        """``(ref, branch)`` to read: the load version, else ``ref``, else the strategy's."""
        ref, branch = strategy.load_location(self._engine)
        wanted = self._version.load if self._version is not None else None
        return self.resolve_ref(wanted or self._ref or ref, branch), branch

    def resolve_ref(self, ref: str, branch: str | None) -> str:
        """``ref`` as Dolt reads it: a Kedro run id is the commit that run left (see
        :meth:`ref_of_run`); branches, tags, hashes and ``X~N`` are themselves."""
        return self.ref_of_run(ref, branch) if RUN_ID_RE.match(ref) else ref

    def ref_of_run(self, run_id: str, branch: str | None) -> str:
        """The commit Kedro run ``run_id`` made of this table on ``branch``; if it made none
        (its data was unchanged), the branch as of the run's start, which is what it saw."""
        found = self._engine.find_run_commit(run_id, table=self._table, branch=branch)
        if found:
            return found
        at_start = run_state_ref(run_id, branch)
        try:
            return self._engine.resolve(at_start, branch=branch)
        except DatasetError as exc:
            raise DatasetError(
                f"Kedro run {run_id!r} made no commit of table {self._table!r} on branch "
                f"{branch or '(checked out)'!r}, and the branch had no commit before that run "
                "started. Fix: check the run id (`kedro dolt log DATASET` lists the runs that "
                "saved it), or load a commit hash, tag or branch instead."
            ) from exc

    def _record(self, kind: str, **fields: Any) -> ActionRecord:
        record = ActionRecord(
            kind=kind,
            dataset=context.current_dataset(),
            database=self._engine.location,
            table=self._table,
            strategy=self._strategy.kind,
            run_id=context.current_run_id(),
            pipeline=context.current_pipeline(),
            node=context.current_node(),
            **fields,
        )
        emit(record)
        callback = self._meta.callback() if self._meta else None
        if callback is not None:
            try:
                callback(record)
            except Exception:  # the data is committed: report, do not fail the node
                logger.exception("kedro-dolt meta callback failed for %s", self._table)
        return record

    def _pull(self, strategy: BranchStrategy, *, for_save: bool) -> dict[str, Any] | None:
        if self._remote is None:
            return None
        pulled = self._remote.pull_branch(self._engine, strategy.target_branch, for_save=for_save)
        return pulled.to_dict() if pulled else None

    def load(self) -> pd.DataFrame:
        if self._meta:
            self._meta.callback()  # an unimportable callback fails before any work
        strategy, base = self._active_strategy()
        pulled = self._pull(strategy, for_save=False)
        ref, branch = self._load_location(strategy)
        read = self._read(ref, branch)
        self._record(
            "load",
            branch=branch or read.branch,
            ref=self._ref or (self._version.load if self._version else None),
            from_commit=None,
            to_commit=read.commit,
            rows=len(read.frame),
            pulled=pulled,
            base_branch=base,
        )
        return from_table(read.frame, read.schema)

    def _read(self, ref: str, branch: str | None, limit: int | None = None) -> TableRead:
        """The table's rows at ``ref``: ``load_args.columns`` and the columns that hold the
        frame's index and order (see :mod:`.layout`)."""
        columns = self._load_args["columns"]
        if columns is not None:
            described = self._engine.read_table(self._table, ref=ref, branch=branch, limit=0)
            columns = columns + [c for c in role_columns(described.schema) if c not in columns]
            ref = described.commit  # the same version, whatever moves meanwhile
        return self._engine.read_table(
            self._table, ref=ref, branch=branch, columns=columns, limit=limit
        )

    def save(self, data: pd.DataFrame) -> None:
        self._write(data, self._save_args["mode"])

    def _write(self, data: pd.DataFrame, mode: str) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DatasetError(
                f"DoltTableDataset saves pandas DataFrames, got {type(data).__name__}. "
                "Fix: return a DataFrame from the node (e.g. pd.DataFrame(data))."
            )
        index = self._save_args["index"] if mode == "overwrite" else False
        rows, roles = to_table(data, index=index, primary_key=self._primary_key)
        schema = TableSchema.from_frame(rows, self._primary_key, roles)
        run_id = context.current_run_id() or (self._version.save if self._version else None)
        trailers = save_trailers(dataset=context.current_dataset(), table=self._table)
        if run_id:
            trailers["run_id"] = run_id
        message = CommitMessage.for_save(self._save_args["commit_message"], trailers)
        tag = self._free_tag(run_id)  # checked before anything is written
        if self._meta:
            self._meta.callback()  # an unimportable callback fails before any write

        strategy, base = self._active_strategy()
        # An existing repository gets the remote checked (or added) by the pull.
        checked = self._remote is not None and self._engine.exists()
        pulled = self._pull(strategy, for_save=True)  # clones a missing repository
        # The one place a save creates the repository (when no remote cloned it).
        self._engine.ensure_repository(initial_branch=strategy.initial_branch)
        request = SaveRequest(
            self._table,
            rows,
            schema,
            message,
            lineage=self._lineage_row(trailers, strategy, len(data)),
            mode=mode,
        )
        outcome = strategy.save(self._engine, request)
        if tag:
            self._engine.tag(tag, outcome.to_commit, f"kedro-dolt: {self._table} at {run_id}")
        pushed = self._push(outcome.branch, tag, checked=checked)
        self._record(
            "save",
            branch=outcome.branch,
            ref=None,
            from_commit=outcome.from_commit,
            to_commit=outcome.to_commit,
            rows=len(data),
            rows_added=outcome.stats.added,
            rows_modified=outcome.stats.modified,
            rows_deleted=outcome.stats.deleted,
            merge=outcome.merge.to_dict() if outcome.merge else None,
            pulled=pulled,
            pushed=pushed,
            tag=tag,
            base_branch=base,
        )

    def _free_tag(self, run_id: str | None) -> str | None:
        """The tag this save makes (``save_args.tag``), refused if it exists already."""
        tag = self._tag_name(run_id)
        if tag and self._engine.exists() and tag in self._engine.tags():
            raise DatasetError(
                f"Tag {tag!r} already exists in {self._engine.location}; nothing was saved. "
                "Fix: put {run_id} in save_args.tag, or delete the old tag (`dolt tag -d`)."
            )
        return tag

    def _push(self, branch: str, tag: str | None, *, checked: bool) -> bool:
        """Push the saved branch (and tag) to the remote, if any; whether it was pushed."""
        if self._remote is None:
            return False
        pushed = self._remote.push_branch(self._engine, branch, checked=checked)
        if pushed and tag:
            self._remote.push_tag(self._engine, tag)
        return pushed

    def _lineage_row(
        self, trailers: Mapping[str, str], strategy: BranchStrategy, rows: int
    ) -> tuple[str, dict[str, Any]] | None:
        if self._meta is None or self._meta.table is None:
            return None
        return self._meta.table, {
            "id": str(uuid.uuid4()),
            "run_id": trailers.get("run_id"),
            "pipeline": trailers.get("pipeline"),
            "node": trailers.get("node"),
            "dataset": trailers.get("dataset"),
            "table_name": self._table,
            "branch": strategy.target_branch,
            "from_commit": None,  # the save script fills in the head it started from
            "rows_written": rows,
            "project": trailers.get("project"),
            "kedro_version": trailers.get("kedro_version"),
            "saved_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
        }

    def _tag_name(self, run_id: str | None) -> str | None:
        template = self._save_args["tag"]
        if not template:
            return None
        values = {
            "run_id": run_id or "no-run",
            "dataset": context.current_dataset() or self._table,
            "table": self._table,
        }
        try:
            name = str(template).format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise DatasetError(
                f"Invalid save_args.tag {template!r}: {exc}. Fix: use only the "
                "placeholders {run_id}, {dataset} and {table}."
            ) from exc
        return validate_branch(name.replace(" ", "-"), key="save_args.tag")

    def table_version(self, *, pull: bool = False) -> str | None:
        """The content hash (``dolt_hashof_table``) of the table a load reads now; None when
        there is no such table (a missing branch or repository raises). Equal hashes: equal
        schema and rows. ``pull``: after the pull a load would do (``remote.pull``)."""
        strategy = self._active_strategy()[0]
        if pull:
            self._pull(strategy, for_save=False)
        ref, branch = self._load_location(strategy)
        return self._engine.table_hash(self._table, ref=ref, branch=branch)

    def head_commit(self) -> str:
        """The commit a load reads now."""
        ref, branch = self._load_location(self._active_strategy()[0])
        return self._engine.resolve(ref, branch=branch)

    def load_at(self, ref: str) -> pd.DataFrame:
        """The table as it was at ``ref`` (a commit, tag, branch or run id), whatever
        ``ref``/``version`` the catalog pins."""
        _, branch = self._load_location(self._active_strategy()[0])
        read = self._read(self.resolve_ref(ref, branch), branch)
        return from_table(read.frame, read.schema)

    def restore(self, ref: str) -> None:
        """Save the whole table at ``ref`` (every column) again, as an overwrite."""
        _, branch = self._load_location(self._active_strategy()[0])
        read = self._engine.read_table(
            self._table, ref=self.resolve_ref(ref, branch), branch=branch
        )
        self._write(from_table(read.frame, read.schema), "overwrite")

    def _exists(self) -> bool:
        ref, branch = self._load_location(self._active_strategy()[0])
        return self._engine.has_table(self._table, ref=ref, branch=branch)

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first ``nrows`` rows for kedro-viz's table preview."""
        ref, branch = self._load_location(self._active_strategy()[0])
        read = self._read(ref, branch, limit=nrows)
        frame = from_table(read.frame, read.schema)
        # Through JSON so NaN/NaT/timestamps arrive as null and ISO strings in kedro-viz.
        return TablePreview(json.loads(frame.to_json(orient="split", date_format="iso")))

    def _location(self) -> str:
        """Where loads read, short and most telling first, e.g. ``data/warehouse:companies@main``;
        kedro-viz shows it as the dataset's file path (and cuts long ones from the left)."""
        ref = self._ref or (self._version.load if self._version and self._version.load else None)
        where = ref or self._strategy.target_branch or "HEAD"
        return f"{context.display_path(self._engine.location)}:{self._table}@{where}"

    def _describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "filepath": self._location(),
            "database": self._engine.location,
            "table": self._table,
            "branch": self._strategy.describe(),
            "ref": self._ref,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
        if self._remote is not None:
            described["remote"] = self._remote.describe()
        if self._meta is not None:
            described["meta"] = self._meta.describe()
        if self._version is not None:
            described["version"] = self._version
        return described
