"""What flows through a ``dolt`` process besides the script: rows streamed in through named
pipes (:class:`RowFeed`) and result sets coming out as Parquet, CSV or JSON."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
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


#: Linux ``fcntl`` command to resize a pipe's buffer (fewer wake-ups of reader and writer).
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


class RowFeed:
    """Writes the rows of a script's loads into named pipes, in statement order, from a
    thread, while the ``dolt`` process reads them with ``LOAD DATA INFILE``: encoding overlaps
    Dolt's load, and no file of rows is ever written whole.

    A failure of the writer (text that cannot be encoded, say) kills the ``dolt`` process
    *before* the pipe is closed: Dolt never sees the end of a cut-short input, so a truncated
    load can never be committed. The scratch branch the killed script made is removed by the
    caller like that of any failed script.
    """

    def __init__(self) -> None:
        self._pipes: list[tuple[Path, Iterable[bytes]]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def __bool__(self) -> bool:
        return bool(self._pipes)

    def add(self, path: Path, chunks: Iterable[bytes]) -> None:
        os.mkfifo(path, 0o600)
        self._pipes.append((path, chunks))

    def start(self, proc: subprocess.Popen[bytes]) -> None:
        self._thread = threading.Thread(
            target=self._feed, args=(proc,), name="kedro-dolt-rows", daemon=True
        )
        self._thread.start()

    def finish(self) -> None:
        """Stop waiting for a reader (the ``dolt`` process has ended) and join the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _open(self, path: Path, proc: subprocess.Popen[bytes]) -> int | None:
        """The pipe's write end once ``dolt`` opens it to read; ``None`` if it never will."""
        return open_when_read(path, lambda: self._stop.is_set() or proc.poll() is not None)

    def _feed(self, proc: subprocess.Popen[bytes]) -> None:
        for path, chunks in self._pipes:
            fd = None
            try:
                rows = iter(chunks)
                first = next(rows, b"")  # encoded while dolt starts
                fd = self._open(path, proc)
                if fd is None:
                    return
                write_all(fd, _chained(first, rows))
            except BrokenPipeError:
                return  # dolt stopped reading: its own error says why
            except BaseException as exc:
                self.error = exc
                # Before the pipe closes: an end of input now would look like the last row.
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
                return
            finally:
                if fd is not None:
                    os.close(fd)


def write_all(fd: int, chunks: Iterable[bytes]) -> None:
    """Every byte of ``chunks`` into ``fd`` (a pipe takes part of a large write at a time)."""
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def open_when_read(path: Path, given_up: Callable[[], bool]) -> int | None:
    """The write end of the named pipe ``path`` (blocking, enlarged) once a reader has opened
    it; ``None`` when ``given_up()`` says no reader will come."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        else:
            os.set_blocking(fd, True)
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
            return fd
        if given_up():
            return None
        time.sleep(0.002)


class PipeWriter:
    """Writes ``chunks`` into the named pipe ``path`` from a thread, for a reader in this
    process (PyMySQL sending a LOAD DATA LOCAL INFILE). ``finish`` after the reader is done:
    it stops waiting for a reader that never came and joins; ``error`` then says whether the
    writer failed (the reader saw a cut-short input)."""

    def __init__(self, path: Path, chunks: Iterable[bytes]) -> None:
        os.mkfifo(path, 0o600)
        self._path, self._chunks = path, chunks
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="kedro-dolt-rows", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        self._stop.set()
        self._thread.join()

    def _write(self) -> None:
        # Open first: a reader blocked on the pipe is released by the close below, even
        # when encoding fails at once.
        fd = None
        try:
            fd = open_when_read(self._path, self._stop.is_set)
            if fd is None:
                return  # the statement failed before reading
            write_all(fd, self._chunks)
        except BrokenPipeError:
            return  # the reader stopped: its own error says why
        except BaseException as exc:
            self.error = exc
        finally:
            if fd is not None:
                os.close(fd)


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
