"""The classes and functions a pickle names, read from its opcodes without unpickling."""

from __future__ import annotations

import collections
import datetime
import hashlib
import pickle

import pytest

from kedro_dolt.framework.incremental.pickled import pickle_refs


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol_names_its_globals(tmp_path, protocol):
    value = {"d": collections.OrderedDict(a=1), "t": datetime.date(2026, 1, 1), "f": len}
    path = tmp_path / "v.pkl"
    path.write_bytes(pickle.dumps([value, value], protocol=protocol))
    refs = pickle_refs(path, hashlib.sha256(path.read_bytes()).hexdigest())
    assert refs is not None
    names = {name for _, name in refs}
    assert {"OrderedDict", "date", "len"} <= names


def test_a_file_that_is_not_one_pickle_stream_names_nothing(tmp_path):
    path = tmp_path / "v.pkl"
    path.write_bytes(pickle.dumps(1) + b"raw array bytes after the stream")
    assert pickle_refs(path, "digest-a") is None
    path.write_bytes(b"not a pickle")
    assert pickle_refs(path, "digest-b") is None
