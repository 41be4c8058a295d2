"""What a ``dolt sql`` process prints: result sets as Parquet, CSV (parsed while Dolt writes
it) or JSON."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import DoltError
from .transport import Rows


def parquet_results(data: bytes) -> list[pa.Table]:
    """The result sets of a ``dolt sql -r parquet`` script: one Parquet file per statement
    that returns rows, written back to back. A file ends with ``PAR1`` and the next starts
    with it; a boundary candidate that does not parse was inside the data."""
    buffer, tables, start = pa.py_buffer(data), [], 0
    while start < len(data):
        end = data.find(b"PAR1PAR1", start + 4)
        while True:
            stop = len(data) if end == -1 else end + 4
            try:
                tables.append(pq.read_table(pa.BufferReader(buffer[start:stop])))
                break
            except (pa.ArrowInvalid, OSError):
                if end == -1:
                    raise
                end = data.find(b"PAR1PAR1", end + 1)
        start = stop
    return tables


#: The header of the marker result set that separates statements in a CSV script's output.
RESULT_MARK = "kedro_dolt_result"


def csv_results(data: bytes, token: str) -> list[pa.Table]:
    """The result sets of a ``dolt sql -r csv`` script whose statements are each followed by
    ``SELECT token AS kedro_dolt_result``: one table of text columns per statement that
    returned rows (header included even for no rows).

    Dolt writes NULL as an empty field and the empty string as ``""``, so the text comes
    back exact: :func:`~kedro_dolt.schema.decode_table` converts it to the columns' types.
    """
    mark = f"{RESULT_MARK}\n{token}\n".encode()
    tables, start = [], 0
    while start <= len(data):
        end = data.find(mark, start)
        while end > 0 and data[end - 1 : end] != b"\n":  # not at a line start: not ours
            end = data.find(mark, end + 1)
        piece = data[start : len(data) if end == -1 else end]
        if piece:
            tables.append(_read_csv(piece))
        if end == -1:
            break
        start = end + len(mark)
    return tables


READ_SIZE = 1 << 20


#: Arrow parses CSV in blocks of this size; a row longer than a block needs one block.
BLOCK_SIZE = 4 << 20


class _Chained(io.RawIOBase):
    """``head`` then the rest of ``stream``, as one raw stream (for Arrow's CSV reader),
    keeping what it handed out so the whole can be parsed again (:meth:`everything`)."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head, self._stream = memoryview(head), stream
        self._seen = [head]
        # Arrow may still read ahead on its own thread after it failed: from then on it
        # gets an end of input, and no byte goes to both readers.
        self._lock = threading.Lock()
        self._taken = False

    def everything(self) -> bytes:
        """All of it: what was read so far and the rest of the stream."""
        with self._lock:
            self._taken = True
            return b"".join([*self._seen, self._stream.read()])

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with self._lock:
            return 0 if self._taken else self._readinto(buffer)

    def _readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read1(len(buffer))  # type: ignore[attr-defined]
        self._seen.append(data)
        buffer[: len(data)] = data
        return len(data)


def stream_csv_results(stream: IO[bytes], token: str, count: int) -> list[pa.Table]:
    """:func:`csv_results` of a script whose first ``count`` statements are each followed by
    the marker and whose last statement (the rows) is not, read from ``stream`` as ``dolt``
    writes it: the rows are parsed while Dolt still writes them."""
    mark = f"{RESULT_MARK}\n{token}\n".encode()
    buffer, found, search = bytearray(), 0, 0
    while found < count:
        end = buffer.find(mark, search)
        if end == -1:
            chunk = stream.read1(READ_SIZE)  # type: ignore[attr-defined]
            if not chunk:
                raise DoltError("dolt's output ended before its last result set.")
            search = max(search, len(buffer) - len(mark))
            buffer += chunk
            continue
        search = end + len(mark)
        if end == 0 or buffer[end - 1] == 0x0A:  # at a line start: ours
            found += 1
    head = csv_results(bytes(buffer[:search]), token)
    rest = bytes(buffer[search:])
    while b"\n" not in rest:  # the rows' header line, for the column names
        chunk = stream.read1(READ_SIZE)  # type: ignore[attr-defined]
        if not chunk:
            break
        rest += chunk
    if not rest:
        return head
    raw = _Chained(rest, stream)
    try:
        reader = pacsv.open_csv(
            io.BufferedReader(raw, READ_SIZE),
            read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=_text_options(_header(rest)),
        )
        rows = reader.read_all()
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        rows = _read_csv(raw.everything())  # a value longer than a block: one block
    return [*head, rows]


def _header(piece: bytes) -> list[str]:
    end = piece.find(b"\n")
    while end != -1 and piece[:end].count(b'"') % 2:  # a newline inside a quoted name
        end = piece.find(b"\n", end + 1)
    return next(csv.reader([piece[: len(piece) if end == -1 else end].decode("utf-8")]), [])


def _text_options(header: list[str]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, pa.string()),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        # BINARY and BLOB values come as their raw bytes: kept (see column_types.canonical).
        check_utf8=False,
    )


def _read_csv(piece: bytes) -> pa.Table:
    return pacsv.read_csv(
        pa.BufferReader(piece),
        read_options=pacsv.ReadOptions(block_size=max(BLOCK_SIZE, len(piece) + 1)),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=_text_options(_header(piece)),
    )


def json_results(out: bytes) -> list[Rows]:
    """One list of rows per statement that returned rows (``dolt sql -r json`` prints
    ``{"rows": [...]}`` per such statement, ``{}`` for none). Dolt's JSON omits NULL values:
    read optional keys with ``.get``."""
    lines = out.decode("utf-8", "replace").splitlines()
    results = []
    for line in lines:
        if line.strip():
            with contextlib.suppress(ValueError):  # a line cut short by a crash
                results.append(json.loads(line).get("rows", []))
    return results
