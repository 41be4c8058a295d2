"""What every ``kedro dolt`` command shares: ``--env``, ``--json`` and a clean stdout."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable
from typing import IO, Any

import click

_STDOUT = "kedro_dolt.stdout"
_OPTIONS: list[Callable[[Any], Any]] = [
    click.option("--env", "-e", default=None, help="Kedro configuration environment."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
]


def common(command: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        # Only the command's own output goes to stdout: whatever else prints meanwhile (Kedro's
        # rich log handler writes to stdout) goes to stderr, so `--json | jq` works.
        click.get_current_context().meta[_STDOUT] = sys.stdout
        with contextlib.redirect_stdout(sys.stderr):
            return command(*args, **kwargs)

    for option in reversed(_OPTIONS):
        run = option(run)
    return click.pass_obj(run)


def emit(data: Any, table: str, as_json: bool) -> None:
    out: IO[str] = click.get_current_context().meta.get(_STDOUT) or sys.stdout
    click.echo(json.dumps(data, indent=2, default=str) if as_json else table, file=out)
