"""``scripts/install-dolt``: an existing dolt >= 1.86 is used as is; only without one would it
build (here Go is kept off PATH, so "would build" shows as the missing-Go error)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import ROOT

SCRIPT = ROOT / "scripts" / "install-dolt"


def fake_dolt(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True)
    binary = directory / "dolt"
    binary.write_text(f'#!/bin/sh\necho "dolt version {version}"\n')
    binary.chmod(0o755)
    return binary


def install(tmp_path: Path, *, binary: Path | None = None, path_dirs: tuple[Path, ...] = ()):
    # A PATH with the shell tools and the given directories, but neither Go nor another dolt.
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("bash", "sh", "sort", "head", "dirname", "basename", "mkdir", "printf"):
        found = shutil.which(tool)
        if found and not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    env = {
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([*map(str, path_dirs), str(tools)]),
        "DOLT_INSTALL_DIR": str(tmp_path / "install"),
    }
    if binary is not None:
        env["KEDRO_DOLT_BINARY"] = str(binary)
    return subprocess.run(
        [str(tools / "bash"), str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )


def test_uses_the_real_dolt_without_building(tmp_path):
    real = Path(shutil.which("dolt") or "")
    result = install(tmp_path, path_dirs=(real.parent,))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("using dolt 1.86.4 at ")
    assert "WARNING" not in result.stdout + result.stderr


def test_any_newer_dolt_is_used(tmp_path):
    newer = fake_dolt(tmp_path / "newer", "2.3.1")
    result = install(tmp_path, binary=newer)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"using dolt 2.3.1 at {newer}"
    assert result.stderr == ""


def test_an_older_dolt_is_not_used(tmp_path):
    older = fake_dolt(tmp_path / "older", "1.85.9")
    result = install(tmp_path, binary=older, path_dirs=(older.parent,))
    assert result.returncode == 1
    assert "no dolt >= 1.86.0 found, and building one needs Go" in result.stderr
    assert not (tmp_path / "install").exists()
