"""Commit messages: a short human summary plus machine-readable lineage trailers.

Dolt keeps only author, dates and the message with a commit, so lineage lives in the message
as git-style trailer lines::

    kedro: save companies (node: preprocess)

    Kedro-Dataset: companies
    Kedro-Table: companies
    Kedro-Run-Id: 2026-11-24T07.01.12.421Z
    Kedro-Node: preprocess

A :class:`CommitMessage` travels down the save path as a value and is rendered to text only
where Dolt needs the text (:func:`render`); this module is the one place that knows the format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

TRAILER_KEYS = {
    "dataset": "Kedro-Dataset",
    "table": "Kedro-Table",
    "run_id": "Kedro-Run-Id",
    "node": "Kedro-Node",
    "pipeline": "Kedro-Pipeline",
    "project": "Kedro-Project",
    "kedro_version": "Kedro-Version",
    "restored_from": "Kedro-Restored-From-Run",
}
_TRAILER_RE = re.compile(r"^(Kedro-[A-Za-z-]+): (.*)$")


def _one_line(value: object) -> str:
    # Values stay on one line, or they could forge trailers of their own.
    return " ".join(str(value).split())


def trailer_line(key: str, value: object) -> str:
    """One trailer line, e.g. ``Kedro-Run-Id: 2026-...``."""
    return f"{TRAILER_KEYS[key]}: {_one_line(value)}"


@dataclass(frozen=True)
class CommitMessage:
    """A commit's summary line and its trailers (keys of :data:`TRAILER_KEYS`)."""

    summary: str
    trailers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_save(cls, summary: str | None, trailers: Mapping[str, str]) -> CommitMessage:
        """``summary``, or ``kedro: save <dataset> (node: <node>)`` from the trailers."""
        if not summary:
            values = {k: _one_line(v) for k, v in trailers.items()}
            name = values.get("dataset") or values.get("table", "table")
            node = values.get("node")
            summary = f"kedro: save {name}" + (f" (node: {node})" if node else "")
        return cls(summary.rstrip(), dict(trailers))

    def with_summary(self, summary: str) -> CommitMessage:
        return replace(self, summary=summary)

    def render(self) -> str:
        lines = [trailer_line(k, v) for k, v in self.trailers.items()]
        return self.summary + ("\n\n" + "\n".join(lines) if lines else "")


def render(message: CommitMessage | str) -> str:
    """The text Dolt records (a plain string is taken as it is)."""
    return message.render() if isinstance(message, CommitMessage) else message


def commit_message(summary: str | None, trailers: Mapping[str, str]) -> str:
    """``summary`` (or the default one) followed by a blank line and the trailer lines."""
    return CommitMessage.for_save(summary, trailers).render()


def parse_trailers(message: str) -> dict[str, str]:
    """The Kedro trailers of a commit message, keyed like :data:`TRAILER_KEYS`."""
    by_header = {v: k for k, v in TRAILER_KEYS.items()}
    found: dict[str, str] = {}
    # Trailers are the last paragraph, as in git: a summary cannot pose as one.
    last_paragraph = message.strip().split("\n\n")[-1]
    for line in last_paragraph.splitlines():
        match = _TRAILER_RE.match(line.strip())
        if match and match.group(1) in by_header:
            found[by_header[match.group(1)]] = match.group(2)
    return found
