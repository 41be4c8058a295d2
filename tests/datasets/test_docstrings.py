"""Every example in the datasets' docstrings runs, so none can rot: the Python examples as
doctests against real Dolt, the YAML examples by building each entry through Kedro's
``DataCatalog`` (nothing is loaded: building a dataset touches no database)."""

from __future__ import annotations

import doctest
import re
import textwrap

import pytest
import yaml
from kedro.io import DataCatalog

from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset

DATASETS = [DoltTableDataset, DoltSQLQueryDataset]
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda cls: cls.__name__)
def test_python_example_runs(dataset, tmp_path):
    tests = doctest.DocTestFinder(recurse=False).find(
        dataset, dataset.__name__, globs={"tmp_path": tmp_path}
    )
    assert tests and tests[0].examples, "the docstring has a Python example"
    report: list[str] = []
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda cls: cls.__name__)
def test_yaml_example_builds(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative databases land here
    blocks = YAML_BLOCK.findall(dataset.__doc__ or "")
    assert blocks, "the docstring has a YAML example"
    credentials = {"dolt_server": {"con": "mysql://kedro:secret@dolt.example:3306"}}
    for block in blocks:
        config = yaml.safe_load(textwrap.dedent(block))
        catalog = DataCatalog.from_config(config, credentials=credentials)
        for name in config:
            built = catalog.get(name)
            assert isinstance(built, dataset), name
