"""The type map of loads: what each Dolt column type loads as, the same on every path.

A table's rows reach a load in one of several forms: ``dolt sql -r csv`` text (the CLI),
Dolt's Parquet (the CLI's typed read), connectorx's or PyMySQL's Arrow (a server, the run's
own server included) or a load-cache entry (Parquet of one of these). :func:`canonical` turns
a column in any of these forms into one Arrow form per SQL type, so every path decodes the
same values; :func:`dtype_for` is the pandas dtype of a column of a table kedro-dolt did not
write (the tables it writes record their dtypes in column comments: see :mod:`.schema`).

==============================================  =============================================
Dolt column type                                pandas dtype (``nullable`` / ``NOT NULL``)
==============================================  =============================================
``TINYINT`` .. ``BIGINT`` [``UNSIGNED``]        ``Int8`` .. ``UInt64`` / ``int8`` .. ``uint64``
                                                (``MEDIUMINT``: 32 bits)
``BOOL`` (``TINYINT(1)``), ``BIT(1)``           ``boolean`` / ``bool`` (non-zero is true)
``BIT(n)``, n > 1                               the unsigned integer of n bits: ``UInt8`` ..
                                                ``UInt64`` / ``uint8`` .. ``uint64``
``FLOAT``, ``DOUBLE``                           ``float64`` (a FLOAT's float32 value, widened)
``DECIMAL(p,s)``                                ``object``: ``decimal.Decimal`` with s places
``CHAR``, ``VARCHAR``, ``*TEXT``                ``str``
``ENUM``, ``SET``                               ``str`` (a SET as MySQL prints it: ``'a,c'``)
``JSON``                                        ``str``: the JSON text as Dolt prints it
``BINARY``, ``VARBINARY``, ``*BLOB``            ``object``: ``bytes``
``DATE``, ``DATETIME``, ``TIMESTAMP``           ``datetime64[us]`` (naive, as Dolt returns it)
``TIME``                                        ``timedelta64[us]`` (``-838:59:59`` ..
                                                ``838:59:59``)
``YEAR``                                        ``Int16`` / ``int16``
spatial (``GEOMETRY``, ``POINT``, ...)          refused by ``DoltTableDataset``
==============================================  =============================================

NULL is ``<NA>``, ``NaN``, ``NaT`` or ``None`` as the dtype holds it.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DoltError

_PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3
_INTEGER_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 32, "int": 32, "integer": 32}
_INTEGER_BITS["bigint"] = 64
_KINDS = {
    **dict.fromkeys(("bool", "boolean"), "bool"),
    **dict.fromkeys(("float",), "float"),
    **dict.fromkeys(("double", "real"), "double"),
    **dict.fromkeys(("decimal", "numeric", "dec", "fixed"), "decimal"),
    **dict.fromkeys(
        ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"),
        "text",
    ),
    **dict.fromkeys(
        ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"), "binary"
    ),
    **dict.fromkeys(("date", "datetime", "timestamp"), "datetime"),
    "time": "time",
    "year": "year",
    **dict.fromkeys(
        (
            *("geometry", "point", "linestring", "polygon", "multipoint"),
            *("multilinestring", "multipolygon", "geometrycollection", "geomcollection"),
        ),
        "spatial",
    ),
}
#: Kinds whose CSV text :func:`canonical` reads exactly (all but types unknown here).
KNOWN_KINDS = frozenset({*_KINDS.values(), "int", "uint", "bit"})
_TYPE_RE = re.compile(r"\s*([a-z]+)\s*(?:\(([^()]*)\))?(.*)", re.DOTALL)


def _parts(sql_type: str) -> tuple[str, list[int], bool]:
    """``(base, numeric arguments, unsigned)`` of a type as ``SHOW COLUMNS`` prints it."""
    found = _TYPE_RE.match(sql_type.lower())
    if found is None:
        return "", [], False
    base, args, rest = found.groups()
    numbers = [int(a) for a in (args or "").split(",") if a.strip().isdigit()]
    return base, numbers, "unsigned" in rest.split()


def kind(sql_type: str) -> str:
    """``int``, ``uint``, ``bool``, ``bit``, ``float``, ``double``, ``decimal``, ``text``,
    ``binary``, ``datetime``, ``time``, ``year``, ``spatial`` or ``other`` (unknown here)."""
    base, args, unsigned = _parts(sql_type)
    if base in _INTEGER_BITS:
        if base == "tinyint" and args == [1]:
            return "bool"  # MySQL's BOOL
        return "uint" if unsigned else "int"
    if base == "bit":
        return "bool" if (args or [1])[0] == 1 else "bit"
    return _KINDS.get(base, "other")


def spatial(sql_type: str) -> bool:
    return kind(sql_type) == "spatial"


def _bits(sql_type: str) -> int:
    base, args, _ = _parts(sql_type)
    if base == "bit":
        return next(w for w in (8, 16, 32, 64) if (args or [1])[0] <= w)
    return _INTEGER_BITS[base]


def _decimal_places(sql_type: str) -> tuple[int, int]:
    """``(precision, scale)``: MySQL's defaults are ``(10, 0)``."""
    args = _parts(sql_type)[1]
    return (args[0] if args else 10), (args[1] if len(args) > 1 else 0)


def dtype_for(sql_type: str, nullable: bool) -> str:
    """The pandas dtype of a column of a table that kedro-dolt did not write."""
    found = kind(sql_type)
    if found == "bool":
        return "boolean" if nullable else "bool"
    if found in ("int", "uint", "bit", "year"):
        sign = "" if found in ("int", "year") else "u"
        name = f"{sign}int{16 if found == 'year' else _bits(sql_type)}"
        return name.capitalize().replace("Uint", "UInt") if nullable else name
    return {
        "float": "float64",
        "double": "float64",
        "decimal": "object",
        "binary": "object",
        "spatial": "object",
        "datetime": "datetime64[us]",
        "time": "timedelta64[us]",
    }.get(found, "str" if _PANDAS_3 else "object")


def needs_typed_read(sql_type: str) -> bool:
    """Whether connectorx (a server's fast read) cannot give the column's values exactly:
    it fails on TIME values out of 00:00..24:00 and on spatial types, and reads DECIMAL as
    ``decimal128(38, 10)``. Such tables are read with PyMySQL."""
    found = kind(sql_type)
    if found == "decimal":
        precision, scale = _decimal_places(sql_type)
        return scale > 10 or precision - scale > 28
    return found in ("time", "spatial", "other")


# --- any transport's form -> one Arrow form per kind --------------------------------------

_TIME_RE = r"^(?P<sign>-?)(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?$"
_TARGETS = {
    "int": pa.int64(),
    "uint": pa.uint64(),
    "bool": pa.int64(),
    "bit": pa.uint64(),
    "year": pa.int64(),
    "float": pa.float32(),  # parsed or narrowed to float32: a FLOAT's own value
    "double": pa.float64(),
    "binary": pa.binary(),
    "spatial": pa.binary(),
    "datetime": pa.timestamp("us"),
    "time": pa.duration("us"),
}


def canonical(values: pa.ChunkedArray, sql_type: str) -> pa.ChunkedArray:
    """A column of rows as any transport gives it, in the Arrow form of its kind (see
    :data:`_TARGETS`; text and decimals as they come: :func:`decimals` reads the latter)."""
    found = kind(sql_type)
    target = _TARGETS.get(found)
    given = values.type
    if target is None or given == target:
        if found == "text" and pa.types.is_binary(given):
            return values.cast(pa.string())  # (validates UTF-8)
        return values
    if pa.types.is_null(given):
        return pa.chunked_array([pa.nulls(len(values), target)], target)
    if found in ("bit", "bool") and (pa.types.is_binary(given) or pa.types.is_large_binary(given)):
        # A BIT value over MySQL: its bytes, big-endian.
        numbers = [None if v is None else int.from_bytes(v, "big") for v in values.to_pylist()]
        return pa.chunked_array([pa.array(numbers, pa.uint64())], pa.uint64())
    if found == "time":
        return _duration(values)
    if found == "datetime" and pa.types.is_string(given):
        return _timestamps(values)
    return values.cast(target)


def _duration(values: pa.ChunkedArray) -> pa.ChunkedArray:
    target = pa.duration("us")
    given = values.type
    if pa.types.is_duration(given):
        return values.cast(target)
    if pa.types.is_time(given):  # connectorx: a time of day
        return values.cast(pa.time64("us")).cast(pa.int64()).cast(target)
    if pa.types.is_integer(given):  # Dolt's Parquet: nanoseconds
        return pc.divide(values.cast(pa.int64()), 1000).cast(target)
    text = values.cast(pa.string())
    parts = pc.extract_regex(text, _TIME_RE)
    if parts.null_count != text.null_count:
        shown = next(
            v for v, p in zip(text.to_pylist(), parts.to_pylist(), strict=True) if v and not p
        )
        raise DoltError(f"Dolt returned the TIME value {shown!r}, which kedro-dolt cannot read.")
    field = {name: pc.struct_field(parts, name) for name in ("sign", "h", "m", "s")}
    hours, minutes, secs = (field[n].cast(pa.int64()) for n in ("h", "m", "s"))
    seconds = pc.add(pc.multiply(pc.add(pc.multiply(hours, 60), minutes), 60), secs)
    fraction = pc.utf8_rpad(pc.struct_field(parts, "f"), 6, "0").cast(pa.int64())
    micros = pc.add(pc.multiply(seconds, 1_000_000), fraction)
    signed = pc.if_else(pc.equal(field["sign"], "-"), pc.negate(micros), micros)
    return signed.cast(target)


def _timestamps(text: pa.ChunkedArray) -> pa.ChunkedArray:
    target = pa.timestamp("us")
    try:
        return text.cast(target)
    except pa.ArrowInvalid:
        pass
    # Dolt writes years before 1000 with fewer digits (`999-01-01 ...`): pad them to four.
    for digits, zeros in ((1, "000"), (2, "00"), (3, "0")):
        text = pc.replace_substring_regex(text, rf"^(\d{{{digits}}})-", rf"{zeros}\1-")
    return text.cast(target)


_EXACT = decimal.Context(prec=200)


def decimals(values: pd.Series, sql_type: str) -> pd.Series:
    """DECIMAL values (Decimals, or their text) as ``Decimal`` objects with the column's
    scale, ``None`` for NULL."""
    scale = _decimal_places(sql_type)[1]
    quantum = decimal.Decimal(1).scaleb(-scale)

    def one(value: Any) -> decimal.Decimal | None:
        if value is None or (not isinstance(value, str | decimal.Decimal) and pd.isna(value)):
            return None
        return decimal.Decimal(str(value)).quantize(quantum, context=_EXACT)

    return pd.Series([one(v) for v in values.astype(object)], index=values.index, dtype=object)
