"""The Dolt datasets of the current Kedro project, as ``kedro dolt`` commands see them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from ..datasets import DoltTableDataset
from .hooks import entry_config, is_dolt_config


@dataclass
class ProjectDatasets:
    """The project's Dolt table datasets by name, and the Dolt entries that failed to build."""

    datasets: dict[str, DoltTableDataset] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    def pick(self, name: str | None) -> dict[str, DoltTableDataset]:
        if name is None:
            return self.datasets
        if name in self.broken:
            raise click.ClickException(f"Dataset {name!r} is broken: {self.broken[name]}")
        if name not in self.datasets:
            raise click.ClickException(
                f"{name!r} is not a Dolt table dataset of this project; "
                f"choose from: {', '.join(sorted(self.datasets)) or 'none'}."
            )
        return {name: self.datasets[name]}

    def report_broken(self) -> None:
        """After the output: name each broken entry on stderr and exit 1."""
        if not self.broken:
            return
        lines = [f"  {name}: {error}" for name, error in sorted(self.broken.items())]
        click.echo("Broken Dolt dataset(s) in the catalog:\n" + "\n".join(lines), err=True)
        click.get_current_context().exit(1)


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    # Kedro logs while it builds the session and catalog; errors still show (on stderr).
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def dolt_datasets(metadata: Any, env: str | None) -> ProjectDatasets:
    """The Dolt table datasets the project uses (``DoltSQLQueryDataset`` has no table)."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.io.core import is_parameter

    with _quiet_logging():
        session = KedroSession.create(project_path=metadata.project_path, env=env)
        try:
            catalog = session.load_context().catalog
            # Catalog entries, plus what the pipelines use: factory-pattern datasets exist
            # only once a name used by a pipeline is resolved against the patterns.
            names = set(catalog.keys())
            try:
                for pipe in pipelines.values():
                    names.update(pipe.datasets())
            except Exception as exc:
                raise click.ClickException(f"Cannot load the project's pipelines: {exc}") from exc
            found = ProjectDatasets()
            for name in sorted(n for n in names if not is_parameter(n)):
                try:
                    dataset = catalog.get(name)
                except Exception as exc:
                    config = entry_config(catalog, name)
                    # A custom catalog without Kedro's resolver: cannot tell, so report it.
                    if config is None or is_dolt_config(config):
                        found.broken[name] = str(exc)
                    continue
                if isinstance(dataset, DoltTableDataset):
                    found.datasets[name] = dataset
            return found
        finally:
            session.close()
