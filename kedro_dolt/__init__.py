"""kedro-dolt: Dolt (Git for data) as the versioned storage layer of Kedro pipelines."""

from typing import Any

from . import _compat
from .datasets import DoltSQLQueryDataset, DoltTableDataset
from .engine import DoltCLIEngine, DoltEngine
from .errors import DoltError
from .versioning.records import ActionRecord, CallbackMeta
from .versioning.remote import Remote
from .versioning.strategies import AppendBranch, MergeBranch, NewBranch

_compat.install()  # module paths of 0.2.0 pre-releases (kedro_dolt.hooks, ...) keep working

__version__ = "0.2.0"

__all__ = [
    "ActionRecord",
    "AppendBranch",
    "CallbackMeta",
    "DoltCLIEngine",
    "DoltEngine",
    "DoltError",
    "DoltSQLQueryDataset",
    "DoltTableDataset",
    "IncrementalRunner",
    "MergeBranch",
    "NewBranch",
    "Remote",
]

# kedro-viz labels a dataset by its class's module: show the `type:` users write in catalog.yml
# (kedro_dolt.DoltTableDataset) rather than the private module path (datasets.table_dataset).
# Pickle finds the classes here too.
DoltTableDataset.__module__ = __name__
DoltSQLQueryDataset.__module__ = __name__


def __getattr__(name: str) -> Any:
    # Imported on first use: kedro.runner imports kedro.framework.project, which configures
    # Kedro's logging; plain `import kedro_dolt` must not.
    if name == "IncrementalRunner":
        from .framework.incremental import IncrementalRunner

        return IncrementalRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
