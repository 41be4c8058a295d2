"""What a user writes in Python: names from ``kedro_dolt``, the README's walkthrough as written,
a ``doltcli.Dolt`` as ``database``, and how kedro-viz labels the datasets."""

from __future__ import annotations

import importlib
import pickle
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError

import kedro_dolt
from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset
from kedro_dolt._compat import MOVED
from tests.support import ROOT

PUBLIC = [
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


def test_every_public_name_imports_from_the_package():
    assert sorted(kedro_dolt.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(kedro_dolt, name) is not None
    # The classes are the ones the submodules define, not copies.
    from kedro_dolt.versioning.records import ActionRecord, CallbackMeta

    assert kedro_dolt.CallbackMeta is CallbackMeta
    assert kedro_dolt.ActionRecord is ActionRecord


def test_version_matches_the_distribution():
    if sys.version_info >= (3, 11):
        import tomllib

        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    else:  # pragma: no cover - the dev venv is 3.11+
        declared = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    assert kedro_dolt.__version__ == declared == "0.2.0"
    assert (Path(kedro_dolt.__file__).parent / "py.typed").is_file()


def readme_walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python API") : text.index("## Coming from kedro-dolt 0.1")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Python API section has one walkthrough block"
    return blocks[0]


def test_readme_walkthrough_runs_as_written(tmp_path, monkeypatch):
    code = readme_walkthrough()
    for name in ('AppendBranch(branch="master")', "MergeBranch(branch_from=first", "Remote(url="):
        assert name in code
    assert "CallbackMeta(fn=lambda x: logger.log(x))" in code
    monkeypatch.chdir(tmp_path)  # relative paths: the database and the remote land here
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "warehouse" / ".dolt").is_dir()
    assert (tmp_path / "dolt-remote").is_dir()


class TestKedroViz:
    def test_type_label_is_the_catalog_type(self, repo):
        from kedro_viz.models.utils import get_dataset_type

        table = DoltTableDataset(database=str(repo), table="t")
        query = DoltSQLQueryDataset(database=str(repo), sql="SELECT 1 AS one")
        assert get_dataset_type(table) == "kedro_dolt.DoltTableDataset"
        assert get_dataset_type(query) == "kedro_dolt.DoltSQLQueryDataset"

    def test_datasets_still_pickle(self, repo, companies):
        dataset = DoltTableDataset(database=str(repo), table="c", save_args={"primary_key": "id"})
        dataset.save(companies)
        pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(dataset)).load(), companies)


class TestDoltcliDatabase:
    def test_a_doltcli_repository_is_a_database(self, tmp_path, companies):
        import doltcli  # the `doltcli` extra, installed by `make python`

        repo = doltcli.Dolt.init(str(tmp_path / "legacy"))
        dataset = DoltTableDataset(database=repo, table="c", save_args={"primary_key": "id"})
        assert dataset.engine.database == tmp_path / "legacy"
        dataset.save(companies)
        pd.testing.assert_frame_equal(dataset.load(), companies)
        # The dataset keeps the path, not the doltcli object: it still pickles.
        pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(dataset)).load(), companies)
        query = DoltSQLQueryDataset(database=repo, sql="SELECT COUNT(*) AS n FROM c")
        assert query.load()["n"].tolist() == [3]

    def test_other_objects_are_refused(self):
        with pytest.raises(DatasetError, match=r"Invalid database 42"):
            DoltTableDataset(database=42, table="c")


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_module_paths_of_pre_releases_still_import(old, new):
    """Modules moved into layers (issue 16) import under their old paths as the same module."""
    assert importlib.import_module(old) is importlib.import_module(new)


def test_importing_the_package_leaves_kedro_logging_alone():
    # kedro.runner (behind IncrementalRunner) imports kedro.framework.project, which sets up
    # Kedro's logging and prints which configuration it uses: only on first use.
    import subprocess

    code = (
        "import sys, kedro_dolt; print('kedro.framework.project' in sys.modules); "
        "kedro_dolt.IncrementalRunner; print('kedro.framework.project' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "False"  # nothing logged or imported by the package itself
    assert lines[-1] == "True"
