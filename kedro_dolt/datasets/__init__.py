"""Kedro datasets backed by Dolt."""

from .sql_query_dataset import DoltSQLQueryDataset
from .table_dataset import DoltTableDataset

__all__ = ["DoltSQLQueryDataset", "DoltTableDataset"]
