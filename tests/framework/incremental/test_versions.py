"""Versions of non-Dolt datasets: file content hashes (remembered by size and mtime, as DVC
does), params, and None for what cannot be versioned."""

from __future__ import annotations

import hashlib
import json
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
    assert first and first.startswith("file:") and "#cfg:" in first
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
    # Any params Kedro accepts: integer keys, mixed with strings (YAML allows both).
    assert versions.params_version({1: "a", "b": 2}) != versions.params_version({1: "a", "b": 3})
    assert versions.params_version({1: "a"}) != versions.params_version({"1": "a"})
    assert versions.is_params("params:a") and versions.is_params("parameters")
    assert not versions.is_params("paramsx")


def test_a_unreadable_store_means_hashing_again(tmp_path):
    store = tmp_path / "cache" / "file-hashes.json"
    store.parent.mkdir(parents=True)
    store.write_text("{broken")
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    assert versions.content_hash(path) == hashlib.sha256(b"x\n1\n").hexdigest()


def test_the_catalog_configuration_is_part_of_a_version(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x;y\n1;2\n")
    comma = versions.dataset_version(CSVDataset(filepath=str(path)))
    semicolon = versions.dataset_version(CSVDataset(filepath=str(path), load_args={"sep": ";"}))
    assert comma and semicolon and comma != semicolon
    assert versions.content_of(comma) == versions.content_of(semicolon)
    saved = versions.dataset_version(CSVDataset(filepath=str(path), save_args={"index": True}))
    assert saved != comma


def test_a_versioned_file_has_the_version_a_load_reads(tmp_path):
    from kedro.io import Version

    first = CSVDataset(
        filepath=str(tmp_path / "v.csv"), version=Version(None, "2026-01-01T00.00.00.000Z")
    )
    assert versions.dataset_version(first) is None  # nothing saved yet
    import pandas as pd

    first.save(pd.DataFrame({"x": [1]}))
    v1 = versions.dataset_version(first)
    second = CSVDataset(
        filepath=str(tmp_path / "v.csv"), version=Version(None, "2026-01-02T00.00.00.000Z")
    )
    second.save(pd.DataFrame({"x": [2]}))
    assert versions.dataset_version(first) not in (None, v1)  # the latest, not a stale cache
    pinned = CSVDataset(
        filepath=str(tmp_path / "v.csv"), version=Version("2026-01-01T00.00.00.000Z", None)
    )
    assert versions.dataset_version(pinned) == v1


def test_a_query_is_versioned_by_the_tables_it_reads(tmp_path):
    from kedro_dolt import DoltSQLQueryDataset
    from tests.conftest import dolt

    repo = tmp_path / "repo"
    repo.mkdir()
    dolt(repo, "init")
    dolt(
        repo,
        "sql",
        "-q",
        "CREATE TABLE t (id INT PRIMARY KEY, x INT); CREATE TABLE u (id INT PRIMARY KEY); "
        "INSERT INTO t VALUES (1, 1); CALL DOLT_COMMIT('-Am', 'start');",
    )
    query = DoltSQLQueryDataset(database=str(repo), sql="SELECT SUM(x) AS s FROM t")
    first = versions.dataset_version(query)
    assert first and first.startswith("query:")
    dolt(repo, "sql", "-q", "INSERT INTO u VALUES (1); CALL DOLT_COMMIT('-am', 'other table');")
    assert versions.dataset_version(query) == first  # a commit elsewhere changes nothing
    dolt(repo, "sql", "-q", "UPDATE t SET x = 2; CALL DOLT_COMMIT('-am', 'its table');")
    assert versions.dataset_version(query) not in (None, first)
    pinned = DoltSQLQueryDataset(database=str(repo), sql="SELECT * FROM t AS OF 'main~1'")
    assert versions.dataset_version(pinned) is None


def test_remembered_hashes_another_user_could_plant_are_not_believed(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    os.utime(path, ns=(1, 10**18))
    store = tmp_path / "cache" / "file-hashes.json"
    store.parent.mkdir(parents=True)
    os.chmod(store.parent, 0o777)  # a shared directory: anyone could have written the file
    stat = path.stat()
    planted = {str(path.resolve()): [stat.st_size, stat.st_mtime_ns, "0" * 64]}
    store.write_text(json.dumps(planted))
    assert versions.content_hash(path) == hashlib.sha256(b"x\n1\n").hexdigest()
