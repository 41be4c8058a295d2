"""kedro-dolt: Dolt (Git for data) as the versioned storage layer of Kedro pipelines."""

from .datasets import DoltSQLQueryDataset, DoltTableDataset
from .engine import DoltCLIEngine, DoltEngine
from .metadata import ActionRecord
from .remote import Remote
from .strategies import AppendBranch, MergeBranch, NewBranch

__version__ = "0.1.0"

__all__ = [
    "ActionRecord",
    "AppendBranch",
    "DoltCLIEngine",
    "DoltEngine",
    "DoltSQLQueryDataset",
    "DoltTableDataset",
    "MergeBranch",
    "NewBranch",
    "Remote",
]
