"""``DoltTableDataset``: a pandas DataFrame stored as a versioned Dolt table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from copy import deepcopy
from typing import Any, ClassVar

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError
from kedro_datasets._typing import TablePreview

from .. import context
from ..commits import commit_message, save_trailers
from ..engine import DoltCLIEngine, DoltEngine
from ..naming import validate_column, validate_ref, validate_table
from ..schema import TableSchema
from ..strategies import BranchStrategy, branch_strategy


def _merge_args(
    defaults: dict[str, Any], given: Mapping[str, Any] | None, *, name: str
) -> dict[str, Any]:
    args = deepcopy(defaults)
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise DatasetError(f"Unknown {name} {unknown}. Fix: use only {sorted(defaults)}.")
    args.update(given or {})
    return args


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

    Example usage for the `YAML API <https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/>`_:

    .. code-block:: yaml

        companies:
          type: kedro_dolt.DoltTableDataset
          database: data/warehouse      # a Dolt repository; created on the first save
          table: companies
          branch: main                  # where saves commit (default: checked-out branch)
          save_args:
            primary_key: id             # keeps row order and makes diffs row-level
            commit_message: "Refresh companies"

        companies_last_week:
          type: kedro_dolt.DoltTableDataset
          database: data/warehouse
          table: companies
          ref: main~7                   # a branch, tag, commit hash or ancestor
          load_args:
            columns: [id, name]

    Example usage for the `Python API <https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/>`_:

    .. code-block:: pycon

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
    DEFAULT_SAVE_ARGS: ClassVar[dict[str, Any]] = {"primary_key": None, "commit_message": None}

    def __init__(
        self,
        *,
        database: str,
        table: str,
        branch: str | Mapping[str, Any] | BranchStrategy | None = None,
        ref: str | None = None,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Validate the configuration; nothing here touches Dolt (kedro-viz builds every
        dataset at start-up).

        Args:
            database: Path of a local Dolt repository, created with ``dolt init`` on the first
                save. Relative paths are relative to the Kedro project root.
            table: The table name.
            branch: Where saves commit: a branch name, a strategy mapping or a strategy
                object. Default: the repository's checked-out branch.
            ref: What loads read: branch, tag, commit hash or ``X~N``. Default: the save
                branch. ``HEAD`` means the save branch's head.
            load_args: ``columns``: a list of columns to load.
            save_args: ``primary_key``: a column or list of columns (default: a keyless
                table whose row order is not kept); ``commit_message``: the summary line.
            metadata: Anything; kept for plugins such as kedro-viz, ignored by the dataset.
        """
        self._table = validate_table(table)
        self._strategy = branch_strategy(branch)
        self._ref = validate_ref(ref) if ref is not None else None
        self._load_args = _merge_args(self.DEFAULT_LOAD_ARGS, load_args, name="load_args")
        self._save_args = _merge_args(self.DEFAULT_SAVE_ARGS, save_args, name="save_args")
        columns = self._load_args["columns"]
        if columns is not None:
            self._load_args["columns"] = [validate_column(c) for c in columns]
        key = self._save_args["primary_key"]
        keys = [key] if isinstance(key, str) else list(key or [])
        self._primary_key = [validate_column(k) for k in keys]
        self._engine: DoltEngine = DoltCLIEngine(context.resolve_database(database))
        self.metadata = metadata

    @property
    def engine(self) -> DoltEngine:
        return self._engine

    def _load_ref(self) -> str:
        return self._ref or self._strategy.load_ref()

    def load(self) -> pd.DataFrame:
        read = self._engine.read_table(
            self._table,
            ref=self._load_ref(),
            branch=self._strategy.branch,
            columns=self._load_args["columns"],
        )
        return read.frame

    def save(self, data: pd.DataFrame) -> None:
        if not isinstance(data, pd.DataFrame):
            raise DatasetError(
                f"DoltTableDataset saves pandas DataFrames, got {type(data).__name__}."
            )
        schema = TableSchema.from_frame(data, self._primary_key)
        trailers = save_trailers(dataset=context.current_dataset(), table=self._table)
        message = commit_message(self._save_args["commit_message"], trailers)
        self._strategy.save(self._engine, self._table, data, schema=schema, message=message)

    def _exists(self) -> bool:
        return self._engine.has_table(
            self._table, ref=self._load_ref(), branch=self._strategy.branch
        )

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first ``nrows`` rows for kedro-viz's table preview."""
        read = self._engine.read_table(
            self._table,
            ref=self._load_ref(),
            branch=self._strategy.branch,
            columns=self._load_args["columns"],
            limit=nrows,
        )
        # Through JSON so NaN/NaT/timestamps arrive as null and ISO strings in kedro-viz.
        return TablePreview(json.loads(read.frame.to_json(orient="split", date_format="iso")))

    def _describe(self) -> dict[str, Any]:
        return {
            "database": str(self._engine.database),
            "table": self._table,
            "branch": self._strategy.describe(),
            "ref": self._load_ref(),
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
