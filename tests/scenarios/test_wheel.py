"""The package as users get it: sdist and wheel built with ``python -m build`` (the wheel from
the sdist), the wheel installed into a fresh venv on the oldest and newest supported Python,
then imported and used against real Dolt."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.kedro_project import company_project

PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
SUPPORTED = ["3.10", "3.13"]  # oldest and newest Python the package supports

SMOKE = """
import pickle, sys
from pathlib import Path

import pandas as pd
import kedro_dolt
from kedro_dolt import (
    ActionRecord, AppendBranch, CallbackMeta, DoltTableDataset, MergeBranch, Remote,
)

assert kedro_dolt.__version__ == "0.2.0", kedro_dolt.__version__
assert (Path(kedro_dolt.__file__).parent / "py.typed").is_file()
assert "doltcli" not in sys.modules
records = []
data = pd.DataFrame({"id": [1, 2], "name": ["Acme", None]})
dataset = DoltTableDataset(
    database=sys.argv[1], table="companies", branch=AppendBranch(branch="main"),
    meta=CallbackMeta(fn=records.append), save_args={"primary_key": "id"},
)
dataset.save(data)
loaded = pickle.loads(pickle.dumps(dataset)).load()
pd.testing.assert_frame_equal(loaded, data)
assert [r.kind for r in records] == ["save"] and isinstance(records[0], ActionRecord)
print("SMOKE OK", sys.version_info[:2])
"""


def interpreter(version: str) -> Path:
    found = sorted(PYENV.glob(f"{version}.*/bin/python{version}"))
    assert found, f"Python {version} is not installed under {PYENV} (pyenv install {version})"
    return found[-1]


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel built from it."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {"sdist": next(out.glob("*.tar.gz")), "wheel": next(out.glob("*.whl"))}


class TestDistributions:
    def test_wheel_metadata(self, dist):
        with zipfile.ZipFile(dist["wheel"]) as wheel:
            names = set(wheel.namelist())
            metadata = email.message_from_bytes(wheel.read("kedro_dolt-0.2.0.dist-info/METADATA"))
        assert {
            "kedro_dolt/py.typed",
            "kedro_dolt/json_logging.yml",
            "kedro_dolt_json.pth",
            "_kedro_dolt_json.py",
            "kedro_dolt-0.2.0.dist-info/licenses/LICENSE",
        } <= names
        assert metadata["Version"] == "0.2.0"
        assert metadata["License-Expression"] == "Apache-2.0"
        requires = metadata.get_all("Requires-Dist")
        # doltcli (typed-ast) does not install on Python 3.13: only in its optional extra.
        assert [r for r in requires if r.startswith("doltcli")] == [
            'doltcli>=0.2.2; extra == "doltcli"'
        ]
        classifiers = set(metadata.get_all("Classifier"))
        assert "Framework :: Kedro" in classifiers
        for minor in range(10, 14):
            assert f"Programming Language :: Python :: 3.{minor}" in classifiers
        assert metadata.get_all("Project-URL")

    def test_sdist_carries_docs_and_license(self, dist):
        with tarfile.open(dist["sdist"]) as sdist:
            names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
        assert {
            "docs/dolt-facts.md",
            "docs/kedro-viz-preview.png",
            "CHANGELOG.md",
            "LICENSE",
            "README.md",
        } <= names


@pytest.mark.parametrize("version", SUPPORTED)
def test_wheel_installs_and_works(version, dist, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([str(interpreter(version)), "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(dist["wheel"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]

    smoke = subprocess.run(
        [str(python), "-c", SMOKE, str(tmp_path / "warehouse")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert f"SMOKE OK ({version.replace('.', ', ')})" in smoke.stdout

    # The installed `kedro` finds the plugin's commands, and --json stdout is pure JSON.
    project = company_project(tmp_path / "project")
    status = subprocess.run(
        [str(venv / "bin" / "kedro"), "dolt", "status", "--json"],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert [row["dataset"] for row in json.loads(status.stdout)] == [
        "companies",
        "company_stats",
        "countries",
    ]
