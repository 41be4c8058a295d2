"""Module paths of kedro-dolt 0.2.0 pre-releases that moved (issue 16), kept importable.

``import kedro_dolt.hooks`` (say) gives the module that now lives at its new path, the very
same module object, so attributes, monkeypatching and pickles by name keep working. Nothing is
imported until an old path is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

#: Old module path -> where it lives now.
MOVED = {
    "kedro_dolt.cli": "kedro_dolt.framework.cli",
    "kedro_dolt.context": "kedro_dolt.framework.context",
    "kedro_dolt.hooks": "kedro_dolt.framework.hooks",
    "kedro_dolt.commits": "kedro_dolt.versioning.commits",
    "kedro_dolt.metadata": "kedro_dolt.versioning.records",
    "kedro_dolt.remote": "kedro_dolt.versioning.remote",
    "kedro_dolt.strategies": "kedro_dolt.versioning.strategies",
    "kedro_dolt.fingerprint": "kedro_dolt.engine.fingerprint",
    "kedro_dolt.locking": "kedro_dolt.engine.locking",
    "kedro_dolt.scratch": "kedro_dolt.engine.scratch",
    "kedro_dolt.schema": "kedro_dolt.engine.schema",
    "kedro_dolt.sql_policy": "kedro_dolt.engine.sql_policy",
    "kedro_dolt.engine.cli": "kedro_dolt.engine.process",
    "kedro_dolt.engine.cli_io": "kedro_dolt.engine.output",
    "kedro_dolt.engine.operations": "kedro_dolt.engine.sql_engine",
    "kedro_dolt.engine.server": "kedro_dolt.engine.connection",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module at its new path."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module is already the one at the new path, fully imported."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Alias())
