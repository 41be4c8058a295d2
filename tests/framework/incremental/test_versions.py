"""Versions of non-Dolt datasets: file content hashes (remembered by size and mtime, as DVC
does), params, and None for what cannot be versioned."""

from __future__ import annotations

import hashlib
import os

import pytest
from kedro.io import MemoryDataset
from kedro_datasets.pandas import CSVDataset

from kedro_dolt.framework.incremental import versions


@pytest.fixture(autouse=True)
def fresh_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("KEDRO_DOLT_CACHE_DIR", str(tmp_path / "cache" / "tables"))
    monkeypatch.setattr(versions, "_file_hashes", {})
    monkeypatch.setattr(versions, "_loaded", False)


def test_a_file_version_follows_its_content(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    dataset = CSVDataset(filepath=str(path))
    first = versions.dataset_version(dataset)
    assert first and first.startswith("file:")
    path.write_text("x\n2\n")
    os.utime(path, ns=(1, 10**18))  # a different mtime: hashed again
    assert versions.dataset_version(dataset) not in (None, first)


def test_an_unchanged_size_and_mtime_is_not_read_again_even_by_the_next_run(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    os.utime(path, ns=(1, 10**18))
    first = versions.content_hash(path)
    versions.save_known()
    # The next run (nothing in memory) finds the hash in the store by path, size and mtime:
    # prove it by changing the content behind the same size and mtime.
    versions._file_hashes.clear()
    versions._loaded = False
    path.write_text("x\n9\n")
    os.utime(path, ns=(1, 10**18))
    assert versions.content_hash(path) == first
    assert (tmp_path / "cache" / "file-hashes.json").is_file()


def test_a_directory_hashes_its_files_and_their_names(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a").write_text("1")
    before = versions.content_hash(folder)
    (folder / "b").write_text("")
    assert versions.content_hash(folder) != before


def test_what_cannot_be_versioned_has_no_version(tmp_path):
    assert versions.dataset_version(MemoryDataset([1])) is None
    assert versions.dataset_version(CSVDataset(filepath=str(tmp_path / "missing.csv"))) is None
    assert versions.dataset_version(CSVDataset(filepath="memory://bucket/a.csv")) is None


def test_params_versions_follow_values():
    assert versions.params_version({"a": 1}) == versions.params_version({"a": 1})
    assert versions.params_version({"a": 1}) != versions.params_version({"a": 2})
    assert versions.is_params("params:a") and versions.is_params("parameters")
    assert not versions.is_params("paramsx")


def test_a_unreadable_store_means_hashing_again(tmp_path):
    store = tmp_path / "cache" / "file-hashes.json"
    store.parent.mkdir(parents=True)
    store.write_text("{broken")
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    assert versions.content_hash(path) == hashlib.sha256(b"x\n1\n").hexdigest()
