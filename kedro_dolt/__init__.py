"""kedro-dolt: Dolt (Git for data) as the versioned storage layer of Kedro pipelines."""

from .datasets import DoltSQLQueryDataset, DoltTableDataset
from .engine import DoltCLIEngine, DoltEngine
from .strategies import AppendBranch

__version__ = "0.1.0"

__all__ = [
    "AppendBranch",
    "DoltCLIEngine",
    "DoltEngine",
    "DoltSQLQueryDataset",
    "DoltTableDataset",
]
