"""Node memos, kept in Dolt: what a node read and wrote the last times it ran.

One table, ``kedro_dolt_memo``, on its own branch ``kedro-dolt-memo`` of the repository that
holds the pipeline's Dolt datasets, so memos travel with clones, pushes and the server without
adding commits to data branches. A row per (node, memo key), the key being a hash of the
node's code fingerprint, its params and the versions of its inputs; upserted once at the end
of a run (also of a failed run, for the nodes that succeeded) in one commit. A clone that has
no local memo branch reads its remotes' (``origin/kedro-dolt-memo``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from kedro.io.core import DatasetError

from ...engine import DoltEngine
from ...engine.commits import CommitMessage
from ...engine.schema import TableSchema

logger = logging.getLogger(__name__)

MEMO_TABLE = "kedro_dolt_memo"
MEMO_BRANCH = "kedro-dolt-memo"
_COLUMNS = ["node", "memo_key", "code", "params", "inputs", "outputs", "run_id", "saved_at"]


def memo_key(code: str, params: dict[str, str], inputs: dict[str, str]) -> str:
    text = json.dumps([code, params, inputs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Output:
    """An output as a node left it: its version and, for a Dolt table, the commit holding it."""

    version: str
    commit: str | None = None


@dataclass(frozen=True)
class MemoEntry:
    node: str
    code: str
    params: dict[str, str]
    inputs: dict[str, str]
    outputs: dict[str, Output]
    run_id: str
    saved_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @property
    def key(self) -> str:
        return memo_key(self.code, self.params, self.inputs)

    def row(self) -> dict[str, str]:
        outputs = {k: {"version": o.version, "commit": o.commit} for k, o in self.outputs.items()}
        return {
            "node": self.node,
            "memo_key": self.key,
            "code": self.code,
            "params": json.dumps(self.params, sort_keys=True),
            "inputs": json.dumps(self.inputs, sort_keys=True),
            "outputs": json.dumps(outputs, sort_keys=True),
            "run_id": self.run_id,
            "saved_at": self.saved_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MemoEntry | None:
        """The entry of a stored row, or None when the row is not one this version wrote
        whole (edited by hand, truncated): such a memo means "run", never "skip"."""
        try:
            outputs = {
                name: Output(str(o["version"]), o.get("commit"))
                for name, o in json.loads(row["outputs"]).items()
            }
            entry = cls(
                node=str(row["node"]),
                code=str(row["code"]),
                params=_str_dict(json.loads(row["params"])),
                inputs=_str_dict(json.loads(row["inputs"])),
                outputs=outputs,
                run_id=str(row["run_id"]),
                saved_at=str(row["saved_at"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return entry if entry.key == row.get("memo_key") else None


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError("not a mapping of strings")
    return {str(k): v for k, v in value.items()}


class MemoStore:
    """The memos of one repository: read once at the start of a run, written once at its end."""

    def __init__(self, engine: DoltEngine) -> None:
        self._engine = engine
        self._pending: list[MemoEntry] = []

    @property
    def location(self) -> str:
        return self._engine.location

    def _refs(self) -> list[str]:
        """Where memos are read: the local memo branch, then each remote's copy of it."""
        refs = [MEMO_BRANCH] if self._engine.branch_exists(MEMO_BRANCH) else []
        refs += [f"{remote}/{MEMO_BRANCH}" for remote in sorted(self._engine.remotes())]
        return refs

    def read(self) -> dict[str, list[MemoEntry]]:
        """Every readable memo by node, oldest first; an unreadable store reads as empty."""
        found: dict[tuple[str, str], MemoEntry] = {}
        try:
            if not self._engine.exists():
                return {}
            for ref in self._refs():
                if not self._engine.has_table(MEMO_TABLE, ref=ref):
                    continue
                frame = self._engine.read_table(MEMO_TABLE, ref=ref).frame
                for row in frame.to_dict("records"):
                    entry = MemoEntry.from_row(row)
                    if entry is not None:
                        found.setdefault((entry.node, entry.key), entry)
        except DatasetError as exc:
            logger.warning("kedro-dolt: cannot read node memos (%s); every node runs", exc)
            return {}
        by_node: dict[str, list[MemoEntry]] = {}
        for entry in sorted(found.values(), key=lambda e: e.saved_at):
            by_node.setdefault(entry.node, []).append(entry)
        return by_node

    def add(self, entry: MemoEntry) -> None:
        self._pending.append(entry)

    def write(self, run_id: str | None) -> int:
        """Commit the memos added in this run to the memo branch; the number written."""
        if not self._pending:
            return 0
        rows = {(e.node, e.key): e.row() for e in self._pending}  # the last of a key wins
        frame = pd.DataFrame(list(rows.values()), columns=_COLUMNS)
        self._ensure_branch()
        self._engine.write_table(
            MEMO_TABLE,
            frame,
            schema=TableSchema.from_frame(frame, primary_key=["node", "memo_key"]),
            branch=MEMO_BRANCH,
            message=CommitMessage.for_save(
                f"kedro-dolt: memos of {len(rows)} node(s), run {run_id or '-'}",
                {"run_id": run_id} if run_id else {},
            ),
            mode="upsert",
        )
        self._pending.clear()
        return len(rows)

    def _ensure_branch(self) -> None:
        if self._engine.branch_exists(MEMO_BRANCH):
            return
        start = next(
            (r for r in self._refs() if self._engine.has_table(MEMO_TABLE, ref=r)),
            self._engine.active_branch(),
        )
        self._engine.create_branch(MEMO_BRANCH, start, exist_ok=True)
