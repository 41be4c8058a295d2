"""Build small, real Kedro projects in tmp dirs and run them with the real ``kedro`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import kedro

PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{package}"
version = "0.1"

[tool.kedro]
package_name = "{package}"
project_name = "{package}"
kedro_init_version = "{kedro_version}"
source_dir = "src"
"""


def make_project(root: Path, package: str, *, nodes: str, pipeline: str, catalog: str) -> Path:
    """A Kedro project at ``root``: ``nodes`` is the nodes module, ``pipeline`` the body of
    ``register_pipelines`` (returning a dict), ``catalog`` the catalog.yml text."""
    src = root / "src" / package
    src.mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        PYPROJECT.format(package=package, kedro_version=kedro.__version__)
    )
    for conf in ("base", "local"):
        (root / "conf" / conf).mkdir(parents=True)
    (root / "conf" / "base" / "catalog.yml").write_text(textwrap.dedent(catalog))
    (root / "conf" / "base" / "parameters.yml").write_text("{}\n")
    (src / "__init__.py").write_text("")
    (src / "settings.py").write_text("")
    (src / "nodes.py").write_text(textwrap.dedent(nodes))
    (src / "pipeline_registry.py").write_text(
        "from kedro.pipeline import Pipeline, node, pipeline\n"
        f"from {package}.nodes import *  # noqa: F403\n\n\n"
        "def register_pipelines():\n" + textwrap.indent(textwrap.dedent(pipeline), "    ")
    )
    return root


def kedro_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``kedro ARGS`` in ``project``; the caller checks the exit code and output."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
