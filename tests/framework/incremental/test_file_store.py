"""Kept copies of unversioned file outputs: restored only when they still hash to what was
kept, bounded by size, least recently used first out."""

from __future__ import annotations

import hashlib
import os

import pytest

from kedro_dolt.framework.incremental import file_store, versions


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    monkeypatch.setenv("KEDRO_DOLT_CACHE_DIR", str(tmp_path / "cache" / "tables"))
    monkeypatch.setattr(versions, "_file_hashes", {})
    monkeypatch.setattr(versions, "_loaded", False)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_kept_file_is_restored_byte_for_byte(tmp_path):
    out = tmp_path / "report.csv"
    out.write_bytes(b"a,b\n1,2\n")
    file_store.keep(out, sha(b"a,b\n1,2\n"))
    out.write_bytes(b"changed\n")
    assert file_store.restore(sha(b"a,b\n1,2\n"), out, versions.content_hash)
    assert out.read_bytes() == b"a,b\n1,2\n"


def test_a_kept_directory_is_restored(tmp_path):
    out = tmp_path / "parts"
    out.mkdir()
    (out / "p1").write_text("1")
    digest = versions.content_hash(out)
    assert digest
    file_store.keep(out, digest)
    (out / "p2").write_text("2")
    assert file_store.restore(digest, out, versions.content_hash)
    assert sorted(p.name for p in out.iterdir()) == ["p1"]


def test_a_changed_entry_is_never_restored(tmp_path):
    out = tmp_path / "report.csv"
    out.write_bytes(b"good\n")
    file_store.keep(out, sha(b"good\n"))
    (file_store.root() / sha(b"good\n")).write_bytes(b"planted\n")
    out.write_bytes(b"current\n")
    assert not file_store.restore(sha(b"good\n"), out, versions.content_hash)
    assert out.read_bytes() == b"current\n"  # left as it was
    assert not file_store.has(sha(b"good\n"))  # and the useless entry is gone


def test_the_store_is_bounded_least_recently_used_first(tmp_path, monkeypatch):
    monkeypatch.setenv(file_store.SIZE_ENV, "25")
    for i, name in enumerate("abc"):
        path = tmp_path / name
        path.write_bytes(name.encode() * 10)
        file_store.keep(path, sha(name.encode() * 10))
        entry = file_store.root() / sha(name.encode() * 10)
        os.utime(entry, (i, i))  # a kept before b before c
    assert not file_store.has(sha(b"a" * 10))
    assert file_store.has(sha(b"b" * 10)) and file_store.has(sha(b"c" * 10))
    monkeypatch.setenv(file_store.SIZE_ENV, "0")
    big = tmp_path / "big"
    big.write_bytes(b"x")
    file_store.keep(big, sha(b"x"))
    assert not file_store.has(sha(b"x"))  # 0 keeps nothing
