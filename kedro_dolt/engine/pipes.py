"""Rows streamed into named pipes while a reader loads them: the one pipe writer of both
transports (a ``dolt`` process reading ``LOAD DATA INFILE``, PyMySQL sending ``LOAD DATA LOCAL
INFILE``). Encoding overlaps the load, and no file of rows is ever written whole.

A writer that fails (text that cannot be encoded, say) calls ``abort`` *before* it closes the
pipe: a ``dolt`` reader is killed then, so it never sees the end of a cut-short input and a
truncated load can never be committed. A reader that cannot be killed (PyMySQL) checks
:attr:`PipeFeed.error` after its load and fails the script before anything is committed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

#: Linux ``fcntl`` command to resize a pipe's buffer (fewer wake-ups of reader and writer).
F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


class PipeFeed:
    """Writes each pipe's chunks, in the order the pipes were added, from one thread."""

    def __init__(self) -> None:
        self._pipes: list[tuple[Path, Iterable[bytes]]] = []
        self._abort: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def __bool__(self) -> bool:
        return bool(self._pipes)

    def add(self, path: Path, chunks: Iterable[bytes]) -> None:
        """A named pipe at ``path`` (made now) that will get ``chunks``."""
        os.mkfifo(path, 0o600)
        self._pipes.append((path, chunks))

    def start(
        self,
        reader_gone: Callable[[], bool] = lambda: False,
        abort: Callable[[], None] | None = None,
    ) -> None:
        """Write from a thread. ``reader_gone()`` says the reader ended without reading;
        ``abort()`` stops a reader that can be stopped (before a failed write ends its input)."""
        self._abort = abort
        self._thread = threading.Thread(
            target=self._feed, args=(reader_gone,), name="kedro-dolt-rows", daemon=True
        )
        self._thread.start()

    def finish(self) -> None:
        """Stop waiting for a reader (it is done) and join the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _feed(self, reader_gone: Callable[[], bool]) -> None:
        def given_up() -> bool:
            return self._stop.is_set() or reader_gone()

        for path, chunks in self._pipes:
            fd = None
            try:
                rows = iter(chunks)
                first = next(rows, b"")  # encoded while the reader starts
                fd = open_when_read(path, given_up)
                if fd is None:
                    return
                write_all(fd, _chained(first, rows))
            except BrokenPipeError:
                return  # the reader stopped reading: its own error says why
            except BaseException as exc:
                self.error = exc
                if self._abort is not None:  # before the pipe closes: that would end the input
                    self._abort()
                elif fd is None:  # a reader blocked opening the pipe is let go (input ends)
                    fd = open_when_read(path, given_up)
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


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
