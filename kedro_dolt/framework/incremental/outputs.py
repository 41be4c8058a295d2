"""A node's outputs as the memo records them, and setting them back.

Three kinds of outputs can be skipped: Dolt tables (the table version and the commit that
holds it), local files and directories (their content hash; the saved version of a versioned
dataset, else a kept copy in :mod:`.file_store`) and in-memory datasets (no content: their
version is how they are made). Any other output has no version: its node always runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from kedro.io import MemoryDataset
from kedro.io.core import DatasetError

from .. import context
from . import file_store
from .memo import Output
from .versions import (
    config_version,
    content_hash,
    content_of,
    dataset_version,
    is_dolt,
    local_path,
)

DOLT, FILE, MEMORY = "dolt", "file", "memory"


def output_kind(dataset: Any) -> str | None:
    """``dolt``, ``file``, ``memory`` or None (no version to check)."""
    if is_dolt(dataset):
        return DOLT
    if isinstance(dataset, MemoryDataset) or type(dataset).__name__ == "SharedMemoryDataset":
        return MEMORY
    filepath = getattr(dataset, "_filepath", None)
    if filepath is not None and getattr(dataset, "_protocol", "file") in ("file", None, ""):
        return FILE
    return None


def record(dataset: Any, memory_version: str | None) -> Output | None:
    """The output as the node just left it; None when it cannot be versioned."""
    kind = output_kind(dataset)
    if kind == MEMORY:
        return Output(memory_version) if memory_version else None
    version = dataset_version(dataset)
    if version is None:
        return None
    if kind == DOLT:
        try:
            commit = dataset.head_commit()
        except DatasetError:
            return None
        return Output(version, commit, dataset.table, context.display_path(dataset.engine.location))
    path = local_path(dataset)
    if path is None:
        return None
    if getattr(dataset, "_version", None) is not None:
        return Output(version, saved_version=path.parent.name)
    file_store.keep(path, _digest(version))
    return Output(version)


def _digest(version: str | None) -> str:
    """The sha256 of a file version (``file:<sha>`` or ``file:<sha>+code:...``)."""
    return (content_of(version) or "").split(":", 1)[-1].split("+", 1)[0]


def cannot_restore(dataset: Any, recorded: Output) -> str | None:
    """Why ``recorded`` cannot be set back into ``dataset`` now, or None."""
    kind = output_kind(dataset)
    config = config_version(dataset)
    if kind in (DOLT, FILE) and (config is None or not recorded.version.endswith("#cfg:" + config)):
        return "its catalog entry changed since (it is saved otherwise now)"
    if kind == DOLT:
        if not recorded.commit:
            return "no commit recorded"
        where = context.display_path(dataset.engine.location)
        if recorded.table != dataset.table or recorded.location != where:
            return "the catalog names another table than the memo"
        return None
    if kind == FILE:
        if getattr(dataset, "_version", None) is not None:
            if not recorded.saved_version:
                return "no saved version recorded"
            try:
                earlier = Path(str(dataset._get_versioned_path(recorded.saved_version)))
            except DatasetError:
                return "its saved version cannot be named"
            return None if earlier.exists() else f"saved version {recorded.saved_version} is gone"
        return None if file_store.has(_digest(recorded.version)) else "no kept copy of it"
    return "it cannot be restored"


def restore(name: str, dataset: Any, recorded: Output) -> bool:
    """Set ``recorded`` back into ``dataset``; whether the output now holds that version."""
    kind = output_kind(dataset)
    if kind == DOLT:
        assert recorded.commit is not None  # cannot_restore() checked
        context.set_dataset(name)
        try:
            dataset.restore(recorded.commit)
        finally:
            context.set_dataset(None)
    elif getattr(dataset, "_version", None) is not None:
        _restore_version(dataset, recorded)
    else:
        path = Path(str(dataset._filepath))
        if not file_store.restore(_digest(recorded.version), path, content_hash):
            return False
    return dataset_version(dataset) == recorded.version


def _restore_version(dataset: Any, recorded: Output) -> None:
    """A versioned file output: the recorded version's file saved again as this run's
    version (the history keeps every version; the latest is what loads read)."""
    assert recorded.saved_version is not None
    earlier = Path(str(dataset._get_versioned_path(recorded.saved_version)))
    target = Path(str(dataset._get_save_path()))
    target.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the target under a dot-name: Kedro's version glob (*/<name>) skips it.
    staged = target.parent / f".{target.name}.restore"
    if earlier.is_dir():
        shutil.copytree(earlier, staged)
    else:
        shutil.copyfile(earlier, staged)
    staged.rename(target)
    dataset._clear_version_cache()
