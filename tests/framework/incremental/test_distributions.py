"""The module -> distribution map is remembered across runs until something is installed."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys

from kedro_dolt.framework.incremental import distributions


def test_remembered_until_a_path_directory_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("KEDRO_DOLT_CACHE_DIR", str(tmp_path / "cache" / "tables"))
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    distributions.distributions.cache_clear()
    first = distributions.distributions()
    assert first == {k: list(v) for k, v in importlib.metadata.packages_distributions().items()}
    store = tmp_path / "cache" / "distributions.json"
    kept = json.loads(store.read_text())
    # The next run reads the kept map: prove it with a marker only the file has.
    kept["map"]["marker_module"] = ["marker-dist"]
    store.write_text(json.dumps(kept))
    distributions.distributions.cache_clear()
    assert distributions.distributions()["marker_module"] == ["marker-dist"]
    # An install changes a directory on sys.path: the map is read again.
    (site / "new_package").mkdir()
    os.utime(site, ns=(1, 2_000_000_000_000_000_000))
    distributions.distributions.cache_clear()
    assert "marker_module" not in distributions.distributions()
    distributions.distributions.cache_clear()


def test_the_project_root_on_sys_path_does_not_count(tmp_path, monkeypatch):
    # `python -m kedro` puts the project root on sys.path; its files change every run.
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    before = distributions._key()
    (tmp_path / "new-file").write_text("")
    os.utime(tmp_path, ns=(1, 2_000_000_000_000_000_000))
    assert distributions._key() == before
