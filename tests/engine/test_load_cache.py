"""The content-addressed load cache (issue 18): a cached load is always exactly a Dolt load.

Loads through a server (the server engine, or a local repository served by a run's own
``dolt sql-server``) look in the cache first; each test compares a load served from the cache
with a load of the same version with the cache turned off (``KEDRO_DOLT_CACHE_SIZE=0``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import multiprocessing
import os
import stat
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kedro_dolt import DoltTableDataset
from kedro_dolt.engine import load_cache
from kedro_dolt.engine.connection import ServerConnection
from kedro_dolt.engine.known_versions import known_versions
from kedro_dolt.engine.load_cache import CacheKey, LoadCache, parse_size
from kedro_dolt.engine.schema import TableSchema
from tests.conftest import dolt_rows, foreign

CACHED_ENGINES = pytest.mark.parametrize("engine_kind", ["served", "server"])


def every_dtype() -> pd.DataFrame:
    """One column per dtype kedro-dolt stores, with the values that are easy to get wrong."""
    n = 6
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "i8": np.array([-128, 127, 0, 1, -1, 5], dtype="int8"),
            "u64": np.array([2**64 - 1, 0, 2**63, 1, 2, 3], dtype="uint64"),
            "i64n": pd.array([1, None, -(2**63), 2**63 - 1, 0, None], dtype="Int64"),
            "u8n": pd.array([255, None, 0, 1, 2, 3], dtype="UInt8"),
            "f32": np.array([1.5, -0.0, np.nan, 3.4e38, 1e-45, 0.1], dtype="float32"),
            "f64": [0.1, -0.0, np.nan, 1e-300, 2.0**-1074, -1.7976931348623157e308],
            "f64n": pd.array([0.5, None, -2.25, 0.0, 1e100, None], dtype="Float64"),
            "b": [True, False, True, True, False, False],
            "bn": pd.array([True, None, False, None, True, False], dtype="boolean"),
            "s": pd.Series(["a\tb", None, "NULL", "ünï\ncode", "", "  pad  "], dtype="str"),
            "sp": pd.Series(["x", None, "y", "z", "NULL", "\\N"], dtype="string[python]"),
            "sa": pd.Series(["x", "y", None, "", "w", "v"], dtype="string[pyarrow]"),
            "o": pd.Series(["p", None, "q", "r", "s", "NULL"], dtype=object),
            "dt": pd.to_datetime(
                [
                    *["2020-01-01 00:00:00.123456", None, "1970-01-01", "0999-12-31"],
                    *["9999-12-31", "2024-02-29 23:59:59.999999"],
                ],
                format="ISO8601",
            ).astype("datetime64[us]"),
            "dtz": pd.to_datetime(
                [
                    *["2020-06-01 12:00", "2020-12-01 12:00", None, "2021-03-28 02:30Z"],
                    *["1900-01-01", "2038-01-19 03:14:08"],
                ],
                utc=True,
                format="ISO8601",
            ).tz_convert("Europe/Amsterdam"),
            "dns": pd.to_datetime(["2020-01-01 00:00:00.5"] * 6).astype("datetime64[ns]"),
        }
    )


class Spy:
    """Counts the loads the cache answered (the real cache, only observed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.hits = 0
        original = LoadCache.get

        def get(cache: LoadCache, key: CacheKey, columns: list[str] | None = None) -> pa.Table:
            found = original(cache, key, columns)
            self.hits += found is not None
            return found

        monkeypatch.setattr(LoadCache, "get", get)


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with an empty cache of its own."""
    monkeypatch.setenv(load_cache.DIR_ENV, str(tmp_path / "load-cache"))
    known_versions.clear()
    return tmp_path / "load-cache"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    return Spy(monkeypatch)


def uncached(dataset: DoltTableDataset, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    """The same load, read from Dolt."""
    with monkeypatch.context() as m:
        m.setenv(load_cache.SIZE_ENV, "0")
        return dataset.load()


def assert_exactly(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal frames, dtypes and index included, floats to the bit (-0.0 is not 0.0)."""
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for name in a.columns:
        if a[name].dtype.kind == "f":
            x = a[name].to_numpy(dtype="float64", na_value=np.nan)
            y = b[name].to_numpy(dtype="float64", na_value=np.nan)
            assert np.array_equal(np.signbit(x), np.signbit(y)), name


def entries() -> list[Path]:
    root = Path(os.environ[load_cache.DIR_ENV])
    return sorted(root.glob("*.kdc")) if root.exists() else []


#: What an attacker without this user's key can put in an entry's check field: a CRC-32 (the
#: format before issue 25), an unkeyed SHA-256, an HMAC with a key of their own, or the tag
#: of the entry they replaced.
FORGERIES = ["hash", "own key", "kept tag"]


def forged(genuine: bytes, body: bytes, how: str) -> bytes:
    """``body`` (another version's Parquet) framed as the entry ``genuine``: its key, the
    right length, and a check field recomputed for ``body`` as well as it can be without the
    user's key."""
    trailer = load_cache._TRAILER
    digest, _, check, magic = trailer.unpack_from(genuine, len(genuine) - trailer.size)
    if isinstance(check, int):  # a CRC-32: anyone can recompute it
        return body + trailer.pack(digest, len(body), zlib.crc32(body), magic)
    covered = magic + digest + len(body).to_bytes(8, "little") + body
    tag = {
        "hash": hashlib.sha256(covered).digest(),
        "own key": hmac.new(b"the attacker's key", covered, hashlib.sha256).digest(),
        "kept tag": check,
    }[how]
    return body + trailer.pack(digest, len(body), tag, magic)


def parquet_part(entry: bytes) -> bytes:
    return entry[: len(entry) - load_cache._TRAILER.size]


def cache_off_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "the load cache is off" in r.getMessage()
    ]


NOBODY = 65534


@CACHED_ENGINES
class TestCachedLoads:
    def test_cached_load_equals_dolt_load_for_every_dtype(self, repo, spy, monkeypatch):
        frame = every_dtype()
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        from_save = dataset.load()  # the save put its frame in the cache
        assert spy.hits == 1
        assert_exactly(from_save, uncached(dataset, monkeypatch))

        for entry in entries():
            entry.unlink()
        dataset.load()  # a miss: Dolt's rows are kept
        from_read = dataset.load()
        assert spy.hits == 2
        assert_exactly(from_read, uncached(dataset, monkeypatch))

    @pytest.mark.parametrize("index", ["default", "shuffled", "named"])
    def test_frames_without_a_key(self, repo, spy, monkeypatch, index):
        frame = every_dtype().drop(columns="id")
        if index == "shuffled":
            frame = frame.sample(frac=1, random_state=3)
        elif index == "named":
            frame.index = pd.Index([10, 3, 7, 1, 0, 2], name="row")
        dataset = DoltTableDataset(**repo.args, table="t")
        dataset.save(frame)
        loaded = dataset.load()
        assert spy.hits == 1
        assert_exactly(loaded, uncached(dataset, monkeypatch))
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)

    def test_columns_and_limit(self, repo, spy, monkeypatch):
        frame = every_dtype()
        DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"}).save(frame)
        picked = DoltTableDataset(**repo.args, table="t", load_args={"columns": ["s", "id"]})
        assert_exactly(picked.load(), uncached(picked, monkeypatch))
        assert list(picked.load().columns) == ["s", "id"]
        assert spy.hits >= 2  # (each load reads the schema first: a hit too)
        engine, before = picked.engine, spy.hits
        first = engine.read_table("t", ref="HEAD", limit=2).frame
        assert spy.hits == before + 1
        monkeypatch.setenv(load_cache.SIZE_ENV, "0")
        assert_exactly(first, engine.read_table("t", ref="HEAD", limit=2).frame)
        assert len(first) == 2

    def test_a_commit_by_someone_else_misses(self, repo, spy, monkeypatch):
        frame = every_dtype()[["id", "f64", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        foreign(repo, "UPDATE t SET s = 'theirs' WHERE id = 1", "CALL dolt_commit('-am', 'x')")
        loaded = dataset.load()
        assert spy.hits == 0
        assert loaded.loc[1, "s"] == "theirs"
        assert_exactly(loaded, uncached(dataset, monkeypatch))

    def test_uncommitted_changes_are_never_loaded_or_cached(self, repo, spy, monkeypatch):
        frame = every_dtype()[["id", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        before = entries()
        foreign(repo, "UPDATE t SET s = 'working' WHERE id = 1")
        loaded = dataset.load()
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert entries() == before
        assert dolt_rows(repo, "SELECT s FROM t WHERE id = 1") == [{"s": "working"}]

    def test_an_earlier_version_by_its_commit(self, repo, spy, monkeypatch):
        frame = every_dtype()[["id", "f64"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        first = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
        dataset.save(frame.assign(f64=1.0))
        old = DoltTableDataset(**repo.args, table="t", ref=first)
        pd.testing.assert_frame_equal(old.load(), frame, check_exact=True)
        assert spy.hits == 1
        assert_exactly(old.load(), uncached(old, monkeypatch))

    def test_a_known_version_costs_one_statement(self, repo, monkeypatch):
        scripts: list[list[object]] = []
        original = ServerConnection.run

        def run(connection: ServerConnection, statements: list[object], **kwargs: object):
            scripts.append(list(statements))
            return original(connection, statements, **kwargs)

        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(every_dtype()[["id", "s"]])
        monkeypatch.setattr(ServerConnection, "run", run)
        dataset.load()  # the save told this process the table's hash in its commit
        assert [len(s) for s in scripts] == [1]
        known_versions.clear()
        scripts.clear()
        dataset.load()  # asked again: the commit, then the table's schema and hash there
        assert len(scripts) == 2
        scripts.clear()
        dataset.load()
        assert [len(s) for s in scripts] == [1]
        scripts.clear()
        known = dataset.engine.table_hash("t", ref="HEAD")  # known too: one question
        assert len(scripts) == 1
        known_versions.clear()
        assert known == dataset.engine.table_hash("t", ref="HEAD")
        assert len(scripts) == 3

    def test_a_branch_reset_to_an_earlier_commit_loads_that_version(self, repo, spy, monkeypatch):
        frame = every_dtype()[["id", "f64", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        first = dolt_rows(repo, "SELECT dolt_hashof('HEAD') AS h")[0]["h"]
        dataset.save(frame.assign(f64=3.0))
        pd.testing.assert_frame_equal(dataset.load(), frame.assign(f64=3.0), check_exact=True)
        foreign(repo, f"CALL dolt_reset('--hard', '{first}')")
        loaded = dataset.load()
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert_exactly(loaded, uncached(dataset, monkeypatch))

    @pytest.mark.parametrize("damage", ["flipped", "truncated", "foreign", "other key"])
    def test_a_damaged_entry_is_never_used(self, repo, spy, monkeypatch, damage):
        frame = every_dtype()[["id", "f64", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame.assign(f64=2.0))
        (other,) = entries()
        other_bytes = other.read_bytes()
        dataset.save(frame)
        (entry,) = set(entries()) - {other}
        data = bytearray(entry.read_bytes())
        if damage == "flipped":
            data[len(data) // 3] ^= 0x40
        elif damage == "truncated":
            data = data[: len(data) - 7]
        elif damage == "foreign":  # a valid Parquet file of other rows, with no trailer
            sink = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_pandas(frame.assign(f64=9.0)), sink)
            data = bytearray(sink.getvalue().to_pybytes())
        else:  # a whole entry, of another version of the table
            data = bytearray(other_bytes)
        entry.write_bytes(bytes(data))
        loaded = dataset.load()
        assert spy.hits == 0
        assert_exactly(loaded, uncached(dataset, monkeypatch))
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert entry.read_bytes() != bytes(data)  # removed, then kept again from Dolt
        assert_exactly(dataset.load(), loaded)
        assert spy.hits == 1

    @pytest.mark.parametrize("how", FORGERIES)
    def test_a_planted_entry_is_never_served(self, repo, spy, monkeypatch, how):
        # Issue 25: another user rewrote an entry with other rows, kept the key and
        # recomputed the length and the check; the next load returned the planted rows.
        frame = every_dtype()[["id", "f64", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame.assign(f64=2.0, s="planted"))
        (other,) = entries()
        planted_rows = parquet_part(other.read_bytes())
        dataset.save(frame)
        (entry,) = set(entries()) - {other}
        planted = forged(entry.read_bytes(), planted_rows, how)
        entry.write_bytes(planted)
        loaded = dataset.load()
        assert spy.hits == 0
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert_exactly(loaded, uncached(dataset, monkeypatch))
        assert entry.read_bytes() != planted  # removed, then kept again from Dolt
        assert_exactly(dataset.load(), loaded)
        assert spy.hits == 1

    def test_an_entry_file_of_another_user_is_not_read(self, repo, spy, monkeypatch):
        frame = every_dtype()[["id", "f64", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(frame)
        (entry,) = entries()
        os.chown(entry, NOBODY, NOBODY)
        loaded = dataset.load()  # a whole, authentic entry: only its owner differs
        assert spy.hits == 0
        pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        assert_exactly(loaded, uncached(dataset, monkeypatch))
        assert entry.stat().st_uid == os.getuid()  # replaced by this user's, from Dolt
        dataset.load()
        assert spy.hits == 1

    @pytest.mark.parametrize("unsafe", ["mode 0777", "mode 0775", "another owner"])
    def test_a_directory_others_can_write_turns_the_cache_off(
        self, repo, spy, monkeypatch, caplog, own_cache, unsafe
    ):
        own_cache.mkdir()
        if unsafe == "another owner":
            os.chown(own_cache, NOBODY, NOBODY)  # (this process, as root, could still write)
        else:
            own_cache.chmod(int(unsafe.split()[1], 8))
        frame = every_dtype()
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        caplog.set_level(logging.WARNING)
        dataset.save(frame)
        for _ in range(3):
            loaded = dataset.load()
            pd.testing.assert_frame_equal(loaded, frame, check_exact=True)
        dataset.save(frame.assign(f64=1.5))
        assert_exactly(dataset.load(), uncached(dataset, monkeypatch))
        assert spy.hits == 0
        assert list(own_cache.iterdir()) == []
        (warning,) = cache_off_warnings(caplog)
        assert f"{load_cache.DIR_ENV}={own_cache}" in warning
        if unsafe == "another owner":
            assert f"owned by uid {NOBODY}" in warning
        else:
            assert f"writable by others ({unsafe})" in warning
            assert f"chmod 700 {own_cache}" in warning

    def test_without_a_key_of_this_user_the_cache_is_off(
        self, repo, spy, monkeypatch, caplog, tmp_path
    ):
        key = tmp_path / "shared.key"
        key.write_text("ab" * 32)
        key.chmod(0o644)  # a key others can read authenticates nothing
        monkeypatch.setenv("KEDRO_DOLT_MEMO_KEY", str(key))
        frame = every_dtype()[["id", "s"]]
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        caplog.set_level(logging.WARNING)
        dataset.save(frame)
        pd.testing.assert_frame_equal(dataset.load(), frame, check_exact=True)
        pd.testing.assert_frame_equal(dataset.load(), frame, check_exact=True)
        assert spy.hits == 0
        assert entries() == []
        (warning,) = cache_off_warnings(caplog)
        assert str(key) in warning


class TestCliEngine:
    def test_the_dolt_process_neither_reads_nor_fills_the_cache(self, repo, spy):
        dataset = DoltTableDataset(**repo.args, table="t", save_args={"primary_key": "id"})
        dataset.save(every_dtype())
        dataset.load()
        assert spy.hits == 0
        assert entries() == []


# -- the cache itself ------------------------------------------------------------------------


def schema_of(frame: pd.DataFrame) -> TableSchema:
    return TableSchema.from_frame(frame, ["id"])


def rows(n: int, seed: int = 0) -> pa.Table:
    generator = np.random.default_rng(seed)
    return pa.table({"id": np.arange(n), "x": generator.random(n)})


SCHEMA = schema_of(pd.DataFrame({"id": [1], "x": [0.5]}))


class TestLoadCache:
    def test_keeps_and_gives_back(self, tmp_path):
        cache = LoadCache(tmp_path, 10**9)
        key = CacheKey("abc", SCHEMA)
        cache.put(key, rows(100))
        assert cache.get(key).equals(rows(100))
        assert cache.get(key, ["x"]).column_names == ["x"]
        assert cache.get(CacheKey("abd", SCHEMA)) is None

    @pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
    def test_a_flipped_byte_in_a_big_entry_is_never_used(self, tmp_path, where):
        # Big entries are checked while Parquet decodes them (in another thread).
        cache = LoadCache(tmp_path, 10**9)
        key = CacheKey("big", SCHEMA)
        cache.put(key, rows(300_000))
        (entry,) = tmp_path.glob("*.kdc")
        data = bytearray(entry.read_bytes())
        assert len(data) > 2 * load_cache._PARALLEL_CHECK
        data[int(len(data) * where)] ^= 0x01
        entry.write_bytes(bytes(data))
        assert cache.get(key) is None
        assert not entry.exists()
        cache.put(key, rows(300_000))
        assert cache.get(key).equals(rows(300_000))

    @pytest.mark.parametrize("how", FORGERIES)
    def test_a_planted_big_entry_is_never_used(self, tmp_path, how):
        cache = LoadCache(tmp_path, 10**9)
        key, other = CacheKey("big", SCHEMA), CacheKey("other", SCHEMA)
        cache.put(other, rows(300_000, seed=1))
        cache.put(key, rows(300_000))
        entry = tmp_path / key.name
        planted_rows = parquet_part((tmp_path / other.name).read_bytes())
        assert len(planted_rows) > 2 * load_cache._PARALLEL_CHECK
        entry.write_bytes(forged(entry.read_bytes(), planted_rows, how))
        assert cache.get(key) is None
        assert not entry.exists()

    def test_a_new_directory_and_those_made_above_it_are_private(self, tmp_path):
        old = os.umask(0)  # (the modes are the cache's own, whatever the umask)
        try:
            cache = LoadCache(tmp_path / "a" / "b" / "tables", 10**9)
            cache.put(CacheKey("a", SCHEMA), rows(10))
        finally:
            os.umask(old)
        for made in [tmp_path / "a", tmp_path / "a" / "b", cache.root]:
            assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
        assert cache.get(CacheKey("a", SCHEMA)).equals(rows(10))

    def test_a_directory_replaced_by_another_users_is_checked_again(self, tmp_path, caplog):
        cache = LoadCache(tmp_path / "c", 10**9)
        cache.put(CacheKey("a", SCHEMA), rows(10))
        assert cache.get(CacheKey("a", SCHEMA)) is not None
        (tmp_path / "c").rename(tmp_path / "mine")
        (tmp_path / "c").mkdir()
        ((tmp_path / "mine") / CacheKey("a", SCHEMA).name).rename(
            tmp_path / "c" / CacheKey("a", SCHEMA).name
        )
        os.chown(tmp_path / "c", NOBODY, NOBODY)
        assert cache.get(CacheKey("a", SCHEMA)) is None
        assert not cache.enabled
        assert len(cache_off_warnings(caplog)) == 1

    def test_least_recently_used_go_first(self, tmp_path):
        one = len(_entry_bytes(tmp_path / "probe", rows(2000)))
        cache = LoadCache(tmp_path / "c", int(one * 6.5))
        keys = [CacheKey(f"h{i}", SCHEMA) for i in range(7)]
        for i, key in enumerate(keys[:6]):
            cache.put(key, rows(2000, i))
            os.utime(cache.root / key.name, (1000 + i, 1000 + i))
        assert cache.get(keys[0]) is not None  # used: now the newest
        cache.put(keys[6], rows(2000, 6))  # over the bound: down to 80 % of it
        assert cache.get(keys[1]) is None and cache.get(keys[2]) is None  # least recent
        assert all(cache.get(key) is not None for key in [keys[0], *keys[3:]])
        assert sum(p.stat().st_size for p in cache.root.glob("*.kdc")) <= cache.max_bytes

    def test_an_entry_larger_than_a_fifth_of_the_bound_is_not_kept(self, tmp_path):
        cache = LoadCache(tmp_path, 1000)
        cache.put(CacheKey("big", SCHEMA), rows(5000))
        assert list(tmp_path.glob("*.kdc")) == []

    def test_size_zero_turns_it_off(self, tmp_path, monkeypatch):
        monkeypatch.setenv(load_cache.DIR_ENV, str(tmp_path))
        monkeypatch.setenv(load_cache.SIZE_ENV, "0")
        cache = load_cache.shared()
        assert not cache.enabled
        cache.put(CacheKey("a", SCHEMA), rows(3))
        assert cache.get(CacheKey("a", SCHEMA)) is None
        assert list(tmp_path.iterdir()) == []

    def test_sizes(self, monkeypatch, caplog):
        assert parse_size("0") == 0
        assert parse_size("512M") == 512 * 1024**2
        assert parse_size("2g") == 2 * 1024**3
        assert parse_size("1.5 GiB") == int(1.5 * 1024**3)
        with pytest.raises(ValueError, match="not a size"):
            parse_size("lots")
        monkeypatch.setenv(load_cache.SIZE_ENV, "lots")
        assert load_cache.shared().max_bytes == load_cache.DEFAULT_SIZE
        assert "not a size" in caplog.text

    def test_partial_files_of_a_killed_writer_are_ignored_then_removed(self, tmp_path):
        cache = LoadCache(tmp_path, 10**9)
        partial = tmp_path / ".partial-dead"
        partial.write_bytes(b"half an entry")
        os.utime(partial, (1, 1))
        fresh = tmp_path / ".partial-live"
        fresh.write_bytes(b"being written")
        cache.put(CacheKey("a", SCHEMA), pa.table({"id": [1]}))  # each write cleans up
        assert not partial.exists() and fresh.exists()

    def test_concurrent_writers_and_readers(self, tmp_path):
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(4) as pool:
            results = pool.starmap(_write_and_read, [(str(tmp_path), w) for w in range(4)])
        assert all(results), results
        cache = LoadCache(tmp_path, 10**9)
        for i in range(12):
            assert cache.get(CacheKey(f"k{i}", SCHEMA)).equals(rows(500, i))
        assert list(tmp_path.glob(".partial-*")) == []


def _write_and_read(root: str, worker: int) -> bool:
    """Each worker writes every key (the same rows per key) and reads them back: a reader
    sees a whole entry for that key or none."""
    cache = LoadCache(Path(root), 10**9)
    ok = True
    for round_ in range(3):
        for i in range(12):
            key = CacheKey(f"k{i}", SCHEMA)
            if (i + worker + round_) % 2:
                cache.put(key, rows(500, i))
            found = cache.get(key)
            ok &= found is None or found.equals(rows(500, i))
    return ok


def _entry_bytes(root: Path, table: pa.Table) -> bytes:
    probe = LoadCache(root, 10**9)
    key = CacheKey("probe", SCHEMA)
    probe.put(key, table)
    return (root / key.name).read_bytes()
