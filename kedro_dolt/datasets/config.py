"""Catalog arguments of the Dolt datasets, checked when the catalog is built (nothing here
touches Dolt: kedro-viz builds every dataset at start-up)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from copy import deepcopy
from typing import Any

from kedro.io.core import DatasetError

from ..engine import DoltEngine, engine_for, is_server
from ..framework import context
from ..naming import validate_column


def dataset_engine(
    database: str | os.PathLike[str] | Any, credentials: Mapping[str, Any] | None
) -> DoltEngine:
    """The engine of a dataset's ``database``: a database on the server its credentials name,
    or the local repository at that path (relative to the Kedro project root; a
    ``doltcli.Dolt`` repository object works too)."""
    if is_server(credentials):
        return engine_for(database, credentials)
    return engine_for(context.resolve_database(database), credentials)


def merge_args(
    defaults: dict[str, Any], given: Mapping[str, Any] | None, *, name: str
) -> dict[str, Any]:
    if given is not None and not isinstance(given, Mapping):
        raise DatasetError(
            f"Invalid {name} {given!r}: a mapping of options is expected. "
            f"Fix: give e.g. {name}: {{{sorted(defaults)[0]}: ...}} (options: {sorted(defaults)})."
        )
    args = deepcopy(defaults)
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise DatasetError(f"Unknown {name} {unknown}. Fix: use only {sorted(defaults)}.")
    args.update(given or {})
    return args


def load_columns(value: Any) -> list[str] | None:
    """``load_args.columns`` as a list of column names (``None``: all columns)."""
    if value is None:
        return None
    if (
        isinstance(value, str)
        or not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(c, str) and c for c in value)
    ):
        raise DatasetError(
            f"Invalid load_args.columns {value!r}: a non-empty list of column names is "
            "expected. Fix: e.g. columns: [id, name], or leave it out to load every column."
        )
    return [validate_column(c) for c in value]


def primary_key(value: Any) -> list[str]:
    """``save_args.primary_key`` as a list of column names."""
    if value is None:
        return []
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, (list, tuple)) or not all(
        isinstance(k, str) and k.strip() for k in keys
    ):
        raise DatasetError(
            f"Invalid save_args.primary_key {value!r}: give a column name or a list of column "
            "names. Fix: e.g. primary_key: id, or primary_key: [country, id]."
        )
    if len({k.lower() for k in keys}) != len(keys):
        raise DatasetError(
            f"Invalid save_args.primary_key {value!r}: a column is named twice. "
            "Fix: list each key column once."
        )
    return [validate_column(k) for k in keys]
