"""Node memos, kept in Dolt: what a node read and wrote the last times it ran.

One table, ``kedro_dolt_memos``, on its own branch ``kedro-dolt-memo`` of the repository that
holds the pipeline's Dolt datasets, so memos travel with clones, pushes and the server without
adding commits to data branches. A row per (node, memo key), the key being a hash of the
node's code fingerprint, its signature (its inputs and outputs in declaration order), its
params and the versions of its inputs; upserted once at the end of a run (also of a failed
run, for the nodes that succeeded) in one commit. A clone that has no local memo branch reads
its remotes' (``origin/kedro-dolt-memo``).

A row is trusted only when it verifies (:mod:`.trust`): it re-derives its own key, and it is
sealed with this user's key, or every output it claims is a Dolt table version that a commit
made by that node holds. A row edited by hand means "run", never "skip".
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
from .seal import seal, sealed

logger = logging.getLogger(__name__)

# The second format (signature, seal, positional inputs): rows of the first are not read.
MEMO_TABLE = "kedro_dolt_memos"
MEMO_BRANCH = "kedro-dolt-memo"
_COLUMNS = [
    "node",
    "memo_key",
    "code",
    "signature",
    "params",
    "inputs",
    "outputs",
    "run_id",
    "saved_at",
    "seal",
]


def memo_key(code: str, signature: str, params: dict[str, str], inputs: dict[str, str]) -> str:
    # Lists of pairs keep the declaration order; the signature says which position is which.
    text = json.dumps([code, signature, list(params.items()), list(inputs.items())])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Output:
    """An output as a node left it: its version and where it is kept: for a Dolt table the
    commit holding it, the table and the repository; for a versioned file the saved version."""

    version: str
    commit: str | None = None
    table: str | None = None
    location: str | None = None
    saved_version: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "version": self.version,
            "commit": self.commit,
            "table": self.table,
            "location": self.location,
            "saved_version": self.saved_version,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Output:
        def text(key: str) -> str | None:
            found = value.get(key)
            if found is not None and not isinstance(found, str):
                raise ValueError(f"{key} is not a string")
            return found

        return cls(
            str(value["version"]),
            text("commit"),
            text("table"),
            text("location"),
            text("saved_version"),
        )


@dataclass(frozen=True)
class MemoEntry:
    node: str
    code: str
    signature: str
    params: dict[str, str]
    inputs: dict[str, str]
    outputs: dict[str, Output]
    run_id: str
    saved_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    sealed: bool = True  # written with this user's key (rows read without it: False)

    @property
    def key(self) -> str:
        return memo_key(self.code, self.signature, self.params, self.inputs)

    def row(self) -> dict[str, str]:
        outputs = {k: o.to_dict() for k, o in self.outputs.items()}
        row = {
            "node": self.node,
            "memo_key": self.key,
            "code": self.code,
            "signature": self.signature,
            "params": json.dumps(list(self.params.items())),
            "inputs": json.dumps(list(self.inputs.items())),
            "outputs": json.dumps(outputs, sort_keys=True),
            "run_id": self.run_id,
            "saved_at": self.saved_at,
        }
        return {**row, "seal": seal(row)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> MemoEntry | None:
        """The entry of a stored row, or None when the row is not one this version wrote
        whole (truncated, or its key does not follow from its content): such a memo means
        "run", never "skip"."""
        try:
            outputs = {
                str(name): Output.from_dict(o) for name, o in json.loads(row["outputs"]).items()
            }
            content = {k: row[k] for k in _COLUMNS if k != "seal"}
            entry = cls(
                node=str(row["node"]),
                code=str(row["code"]),
                signature=str(row["signature"]),
                params=_pairs(json.loads(row["params"])),
                inputs=_pairs(json.loads(row["inputs"])),
                outputs=outputs,
                run_id=str(row["run_id"]),
                saved_at=str(row["saved_at"]),
                sealed=sealed({k: str(v) for k, v in content.items()}, row.get("seal")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return entry if entry.key == row.get("memo_key") else None


def _pairs(value: Any) -> dict[str, str]:
    if not isinstance(value, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    ):
        raise ValueError("not a list of name, version pairs")
    return {name: version for name, version in value}


class MemoStore:
    """The memos of one repository: read once at the start of a run, written once at its end."""

    def __init__(self, engine: DoltEngine) -> None:
        self._engine = engine
        self._pending: list[MemoEntry] = []

    @property
    def engine(self) -> DoltEngine:
        return self._engine

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
