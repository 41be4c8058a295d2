"""``DoltSQLQueryDataset``: the result of a read-only SQL query on a Dolt version."""

from __future__ import annotations

from typing import Any, NoReturn

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError

from ..engine import DoltEngine
from ..framework import context
from ..naming import validate_ref
from ..versioning.records import ActionRecord, emit
from .config import dataset_engine


class DoltSQLQueryDataset(AbstractDataset[None, pd.DataFrame]):
    """Loads the result of one ``SELECT`` against a committed version of a Dolt repository.

    The query runs in the read-only revision database of ``ref`` (default: the head of the
    checked-out branch), so it sees committed data only and can change nothing. Dolt's SQL
    is MySQL's plus Dolt's system tables and functions (``dolt_log``, ``dolt_diff(...)``,
    ``AS OF``). Saving raises ``DatasetError``.

    ``sql`` must be exactly one ``SELECT`` (``WITH ... SELECT`` and ``UNION`` of selects
    too), checked when the catalog is built: several statements, ``USE``, ``CALL``, DDL/DML,
    ``SET``, ``SELECT ... INTO``, locking reads, ``/*! ... */`` executable comments and Dolt
    functions that write (``dolt_commit()``, ``dolt_branch()``, ...) raise ``DatasetError``
    saying what to write instead. A query may name another version: ``t AS OF 'v1'`` reads
    a commit, `` `db/main`.t `` reads branch main's working set (uncommitted changes too);
    nothing can be written there either.

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        company_counts:
          type: kedro_dolt.DoltSQLQueryDataset
          database: data/warehouse
          sql: >
            SELECT country, COUNT(*) AS companies
            FROM companies GROUP BY country ORDER BY country
          ref: v1.0                     # optional: branch, tag, commit hash, main~1

        shared_counts:                  # the same on a dolt sql-server
          type: kedro_dolt.DoltSQLQueryDataset
          database: warehouse           # the database's name on the server
          credentials: dolt_server      # conf/local/credentials.yml: {con: mysql://...}
          sql: SELECT COUNT(*) AS n FROM companies
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> import pandas as pd
        >>> from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset
        >>>
        >>> companies = pd.DataFrame({"id": [1, 2], "name": ["Acme", "Globex"]})
        >>> DoltTableDataset(database=tmp_path / "warehouse", table="companies").save(companies)
        >>> counts = DoltSQLQueryDataset(
        ...     database=tmp_path / "warehouse",
        ...     sql="SELECT COUNT(*) AS n FROM companies",
        ... )
        >>> int(counts.load()["n"].iloc[0])
        2
    """

    def __init__(
        self,
        *,
        database: str,
        sql: str,
        ref: str | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            database: Path of a local Dolt repository (relative to the Kedro project root),
                or with ``credentials`` the name of a database on a ``dolt sql-server``.
            sql: One ``SELECT`` statement (see above for what is refused).
            ref: The version to query: branch, tag, commit hash or ``X~N``; default ``HEAD``.
            credentials: ``{con: mysql://user:password@host:port}`` to query a database on a
                ``dolt sql-server`` instead of a local repository.
            metadata: Anything; kept for plugins such as kedro-viz.
        """
        if not isinstance(sql, str) or not sql.strip():
            raise DatasetError(
                "DoltSQLQueryDataset needs a non-empty 'sql'. Fix: set sql: SELECT ..."
            )
        # sqlglot is imported only by projects that have a query dataset (~0.15 s).
        from ..engine.sql_policy import read_only_statement

        read_only_statement(sql)  # a bad query fails when the catalog is built, not at load
        self._sql = sql
        self._ref = validate_ref(ref) if ref is not None else None
        self._engine: DoltEngine = dataset_engine(database, credentials)
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        result = self._engine.query(self._sql, ref=self._ref)
        emit(
            ActionRecord(
                kind="load",
                dataset=context.current_dataset(),
                database=self._engine.location,
                table="",  # a query, not one table
                branch=None,
                ref=self._ref,
                from_commit=None,
                to_commit=result.commit,
                rows=len(result.frame),
                strategy="sql",
                run_id=context.current_run_id(),
                pipeline=context.current_pipeline(),
                node=context.current_node(),
            )
        )
        return result.frame

    def query_version(self) -> str | None:
        """What the result depends on now: the hashes of the tables the query reads at its
        ref (``dolt_*`` system tables: the commit itself); None when the query reads other
        versions or databases, whose state no hash here pins."""
        from ..engine.sql_policy import tables_read

        tables = tables_read(self._sql)
        if tables is None:
            return None
        commit = self._engine.resolve(self._ref or "HEAD")
        if any(t.startswith("dolt_") for t in tables):
            return f"commit:{commit}"  # history and branches, not one table's rows
        hashes = [f"{t}={self._engine.table_hash(t, ref=commit)}" for t in tables]
        return "tables:" + ",".join(hashes)

    def save(self, data: None) -> NoReturn:
        raise DatasetError(
            "DoltSQLQueryDataset is read-only. Fix: save through a DoltTableDataset instead."
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": f"{context.display_path(self._engine.location)} | query at "
            f"{self._ref or 'HEAD'}",
            "database": self._engine.location,
            "sql": self._sql,
            "ref": self._ref or "HEAD",
        }
