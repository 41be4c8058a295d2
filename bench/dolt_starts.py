"""Counting dolt process starts, and the `dolt send-metrics` processes they leave behind."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Global options that take a value: the subcommand is the first other word.
_VALUE_OPTIONS = {"--data-dir", "--branch", "--profile", "--user", "-u", "--host", "--port"}


def subcommand(args: list[str]) -> str:
    words = iter(args)
    for word in words:
        if word in _VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return "?"


class MetricsWatcher:
    """Collects the pids of ``dolt send-metrics`` processes under one DOLT_ROOT_PATH, by
    polling /proc while an operation runs and for a second after it ends."""

    def __init__(self, home: Path) -> None:
        self._marker = f"DOLT_ROOT_PATH={home}".encode()
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> MetricsWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.0)
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.scan()
            time.sleep(0.01)

    def scan(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in self.pids:
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if b"send-metrics" not in cmdline:
                    continue
                if self._marker in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    self.pids.add(int(entry))
            except OSError:
                continue


@dataclass(frozen=True)
class Starts:
    operation: str
    commands: list[str]
    without_flush: int
    send_metrics: int


def counting_wrapper(path: Path, log: Path, dolt: str) -> Path:
    """A ``dolt`` that logs one line per start (flush setting, arguments), then execs
    ``dolt`` (the real binary)."""
    path.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\t%s\\n' \"${{DOLT_DISABLE_EVENT_FLUSH:-unset}}\" \"$*\" >> '{log}'\n"
        f"exec '{dolt}' \"$@\"\n"
    )
    path.chmod(0o755)
    return path


def count_starts(operation: str, op: Callable[[], object], log: Path, home: Path) -> Starts:
    """Run ``op`` and count the wrapper's log lines and the send-metrics processes seen."""
    log.write_text("")
    with MetricsWatcher(home) as watcher:
        op()
    lines = [line.split("\t", 1) for line in log.read_text().splitlines()]
    return Starts(
        operation=operation,
        commands=[subcommand(args.split()) for _, args in lines],
        without_flush=sum(1 for flush, _ in lines if flush != "1"),
        send_metrics=len(watcher.pids),
    )


def starts_table(results: list[Starts], rows: int) -> str:
    lines = [
        f"| operation ({rows:,} rows) | dolt starts | started without "
        "DOLT_DISABLE_EVENT_FLUSH | `dolt send-metrics` left | subcommands |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        counts = ", ".join(
            f"{cmd} x{n}" if n > 1 else cmd for cmd, n in Counter(r.commands).most_common()
        )
        lines.append(
            f"| {r.operation} | {len(r.commands)} | {r.without_flush} | {r.send_metrics} "
            f"| {counts} |"
        )
    return "\n".join(lines)
