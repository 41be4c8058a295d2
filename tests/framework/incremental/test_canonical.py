"""stable_digest: equal values digest alike in every process; different values or types do
not; what has no stable encoding says so."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pytest

from kedro_dolt.framework.incremental.canonical import NotStable, stable_digest


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass
class Point:
    x: object
    y: object


class Plain:
    def __init__(self, value: object) -> None:
        self.value = value


class Other:
    def __init__(self, value: object) -> None:
        self.value = value


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: object, b: object) -> None:
        self.a, self.b = a, b


class Reduced:
    """A custom __reduce__ that can be walked: its arguments are the value."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __reduce__(self) -> tuple[object, ...]:
        return (Reduced, (self.n,))


class Refused:
    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("cannot pickle 'Refused' object")


def distinct(*values: object) -> None:
    digests = [stable_digest(v) for v in values]
    assert len(set(digests)) == len(digests), values


class TestScalars:
    def test_types_are_told_apart(self):
        distinct(1, 1.0, True, "1", b"1", bytearray(b"1"), None, 0, False, -0.0, 0.0, 1 + 0j)

    def test_containers_are_told_apart(self):
        distinct([1], (1,), {1}, frozenset({1}), {1: None}, [[1]], [1, 2], [2, 1], [])

    def test_equal_values_digest_alike(self):
        assert stable_digest([1, "a", (2.5, None)]) == stable_digest([1, "a", (2.5, None)])

    def test_large_bytes(self):
        distinct(b"x" * 10_000, b"x" * 10_001, b"y" * 10_000)


class TestMappings:
    def test_insertion_order_does_not_count(self):
        assert stable_digest({"b": 1, "a": 2}) == stable_digest({"a": 2, "b": 1})

    def test_integer_and_mixed_keys(self):
        assert stable_digest({2: "x", 1: "y"}) == stable_digest({1: "y", 2: "x"})
        assert stable_digest({1: "a", "1": "b"}) == stable_digest({"1": "b", 1: "a"})
        distinct({1: "a"}, {"1": "a"}, {1.0: "a"}, {(1, 2): "a"}, {frozenset({1}): "a"})

    def test_sets_by_encoding(self):
        assert stable_digest({3, "a", 1.5}) == stable_digest({1.5, "a", 3})

    def test_ordered_dict_keeps_order(self):
        one = collections.OrderedDict([("a", 1), ("b", 2)])
        two = collections.OrderedDict([("b", 2), ("a", 1)])
        distinct(one, two, dict(one))


def test_equal_across_processes_and_hash_seeds():
    script = (
        "from kedro_dolt.framework.incremental.canonical import stable_digest\n"
        "print(stable_digest({'s': {'x', 'y', 'z', 'w'}, 2: frozenset({'a', 'b'}), 'n': [1.5]}))"
    )
    seen = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        seen.add(done.stdout.split()[-1])  # after any log lines
    here = stable_digest({"s": {"w", "z", "y", "x"}, 2: frozenset({"b", "a"}), "n": [1.5]})
    assert seen == {here}


class TestStandardLibrary:
    def test_dates_and_times(self):
        utc = dt.timezone.utc
        distinct(
            dt.date(2024, 1, 1),
            dt.datetime(2024, 1, 1),
            dt.datetime(2024, 1, 1, tzinfo=utc),
            dt.datetime(2024, 1, 1, 0, 0, 1),
            dt.time(12),
            dt.timedelta(days=1),
            dt.timedelta(seconds=1),
            "2024-01-01",
        )
        assert stable_digest(dt.date(2024, 1, 1)) == stable_digest(dt.date(2024, 1, 1))

    def test_decimal_keeps_precision(self):
        distinct(decimal.Decimal("1"), decimal.Decimal("1.0"), 1, 1.0)

    def test_paths(self):
        distinct(Path("a/b"), PurePosixPath("a/b"), "a/b", Path("a/c"))

    def test_enum_members(self):
        distinct(Colour.RED, Colour.BLUE, 1)
        assert stable_digest(Colour.RED) == stable_digest(Colour.RED)


class TestNumpyPandas:
    def test_numpy_scalars(self):
        distinct(np.float64(1), np.float32(1), 1.0, np.int64(1), 1)

    def test_arrays(self):
        a = np.arange(6)
        distinct(a, a.reshape(2, 3), a.astype("int32"), a + 1, list(range(6)))
        assert stable_digest(np.arange(6)) == stable_digest(a.copy())
        assert stable_digest(a.reshape(2, 3).T) == stable_digest(
            np.ascontiguousarray(a.reshape(2, 3).T)
        )

    def test_object_arrays_by_elements(self):
        distinct(np.array([1, "a"], dtype=object), np.array(["1", "a"], dtype=object))

    def test_frames(self):
        frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
        assert stable_digest(frame) == stable_digest(frame.copy())
        distinct(
            frame,
            frame.assign(a=[1, 3]),
            frame.rename(columns={"a": "c"}),
            frame.astype({"a": "float64"}),
            frame.set_axis([5, 6]),
            frame[["b", "a"]],
            pd.DataFrame({"a": [1, 2], "b": [1, "y"]}),
            pd.DataFrame({"a": [1, 2], "b": ["1", "y"]}),
        )

    def test_series_and_index(self):
        series = pd.Series([1.0, 2.0], name="s")
        distinct(series, series.rename("t"), series * 2, pd.Index([1.0, 2.0]), series.to_frame())
        assert stable_digest(pd.Series([1.0, 2.0], name="s")) == stable_digest(series)

    def test_categories_count(self):
        one = pd.Series(["a", "b"], dtype=pd.CategoricalDtype(["a", "b"]))
        two = pd.Series(["a", "b"], dtype=pd.CategoricalDtype(["a", "b", "c"]))
        distinct(one, two)


class TestObjects:
    def test_dataclass_by_type_and_state(self):
        assert stable_digest(Point(1, 2)) == stable_digest(Point(1, 2))
        distinct(Point(1, 2), Point(1, 3), Plain(1), Other(1), (1, 2))

    def test_nested_state(self):
        distinct(Plain(Plain([1])), Plain(Plain([2])), Plain([1]))

    def test_slots(self):
        assert stable_digest(Slotted(1, 2)) == stable_digest(Slotted(1, 2))
        distinct(Slotted(1, 2), Slotted(2, 1))

    def test_cycles(self):
        one, two = Plain(None), Plain(None)
        one.value, two.value = one, two
        assert stable_digest(one) == stable_digest(two)
        looped: list[object] = [1]
        looped.append(looped)
        assert stable_digest(looped) != stable_digest([1, [1]])

    def test_custom_reduce_is_walked(self):
        assert stable_digest(Reduced(1)) == stable_digest(Reduced(1))
        distinct(Reduced(1), Reduced(2))

    def test_classes_and_named_functions_by_name(self):
        distinct(Plain, Other, len, sorted, os.path.join)


class TestNotStable:
    @pytest.mark.parametrize(
        "make",
        [
            lambda: socket.socket(),
            lambda: threading.Lock(),
            lambda: open(__file__),  # noqa: SIM115
            lambda: (i for i in range(3)),
            lambda: sys,
            lambda: Refused(),
            lambda: lambda x: x,
        ],
        ids=["socket", "lock", "file", "generator", "module", "refused", "lambda"],
    )
    def test_refused(self, make):
        value = make()
        try:
            with pytest.raises(NotStable):
                stable_digest(value)
        finally:
            if hasattr(value, "close"):
                value.close()

    def test_reason_names_the_value_and_where(self):
        with socket.socket() as sock:
            holder = {"model": Plain({"conn": sock})}
            with pytest.raises(NotStable) as raised:
                stable_digest(holder, what="closure value 'model' of f")
        reason = str(raised.value)
        assert reason.startswith("closure value 'model' of f")
        assert ".model.value.conn" in reason and "socket" in reason
