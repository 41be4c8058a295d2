"""``DoltHooks``: Dolt metadata in Kedro's run logs, run manifests and run-level branches.

Registered through the ``kedro.hooks`` entry point; disable it with
``DISABLE_HOOKS_FOR_PLUGINS = ("kedro-dolt",)`` in ``settings.py``.

* Tells Dolt datasets which run, pipeline, node and dataset they work for (commit trailers).
* Logs one INFO line per Dolt action and, at the end of a run, a summary per database.
* Writes a JSON run manifest with every action record of the run, also under
  ParallelRunner: each process appends its records to a spool file named in the environment,
  which worker processes inherit.
* ``kedro run --params dolt_branch=NAME`` sends every Dolt dataset to branch NAME;
  ``dolt_merge=true`` merges NAME back into each dataset's own branch when the run succeeds.

In a project whose catalog has no Dolt dataset the hook does nothing: no files, no
directories, no logger changes (it is installed for every project of the environment).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl

from ..engine import CommitMessage, DoltCLIEngine, run_server
from ..engine.run_server import RunServers
from ..errors import DoltError
from ..naming import validate_branch
from ..versioning.records import ActionRecord, subscribe
from . import context as run_context

logger = logging.getLogger("kedro_dolt")

CONFIG_PATTERNS = ["dolt*", "dolt*/**", "**/dolt*"]
MANIFEST_DIR_ENV = "KEDRO_DOLT_MANIFEST_DIR"
DEFAULT_MANIFEST_DIR = "data/kedro_dolt/runs"
_NO_MARKUP = {"markup": False}  # branch names like [main] must not be read as rich markup


@dataclass
class HookConfig:
    """``conf/<env>/dolt.yml``: ``manifest_dir`` (relative to the project root) and
    ``run_server`` (serve local repositories with a ``dolt sql-server`` while a run lasts)."""

    manifest_dir: str = DEFAULT_MANIFEST_DIR
    run_server: bool = True


def _short(commit: str | None) -> str:
    return (commit or "-")[:7]


def describe_action(record: ActionRecord) -> str:
    """The log line of one action, e.g. ``Dolt: saved companies -> warehouse@main a..b``."""
    name = record.dataset or record.table
    where = f"{Path(record.database).name}@{record.branch or 'HEAD'}"
    if record.strategy == "sql":
        at = f"{Path(record.database).name}@{record.ref or 'HEAD'}"
        return f"Dolt: queried {name} <- {at} {_short(record.to_commit)} ({record.rows} rows)"
    if record.kind == "load":
        # What the load read: the ref or run id it was pinned to, else its branch.
        read = f"{Path(record.database).name}@{record.ref or record.branch or 'HEAD'}"
        return f"Dolt: loaded {name} <- {read} {_short(record.to_commit)} ({record.rows} rows)"
    if record.committed:
        change = (
            f"{_short(record.from_commit)}..{_short(record.to_commit)} "
            f"(+{record.rows_added} ~{record.rows_modified} -{record.rows_deleted} rows)"
        )
    else:
        change = f"{_short(record.to_commit)} (unchanged, no commit)"
    line = f"Dolt: saved {name} -> {where} {change}"
    if record.merge:
        merge = record.merge
        how = "fast-forward" if merge.get("fast_forward") else "merge"
        line += f", {how} into {merge['into']}"
        if merge.get("conflicts"):
            line += f" ({merge['conflicts']} conflicts resolved: {merge.get('resolved')})"
    if record.pushed:
        line += ", pushed"
    return line


def _on_record(record: ActionRecord) -> None:
    logger.info(describe_action(record), extra=_NO_MARKUP)
    spool = run_context.run_value("spool")
    if spool:
        line = (json.dumps(record.to_dict(), default=str) + "\n").encode("utf-8")
        # Made with the first record: a run that never reached Dolt leaves no directory.
        Path(spool).parent.mkdir(parents=True, exist_ok=True)
        with open(spool, "ab") as handle:  # one locked append per record, from any process
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(line)


_listening = False


def _show_info() -> None:
    # Kedro's default logging shows its own loggers at INFO, plugins' only at WARNING: show
    # ours unless the project's logging.yml says otherwise. Only in projects that use Dolt.
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def _listen() -> None:
    """Subscribe the log/spool listener once per process (parent and each worker), in runs
    that use Dolt (ParallelRunner's workers inherit the run's environment)."""
    global _listening
    if not _listening and run_context.run_value("spool"):
        _show_info()
        subscribe(_on_record)
        _listening = True


def is_dolt_config(config: Any) -> bool:
    """Whether a catalog config asks for a Dolt dataset (``type: kedro_dolt.DoltTableDataset``
    or any other spelling of a Dolt type), without building it."""
    kind = config.get("type") if isinstance(config, dict) else None
    return isinstance(kind, str) and "dolt" in kind.lower()


def entry_config(catalog: Any, name: str, conf_catalog: dict[str, Any] | None = None) -> Any:
    """The catalog config of ``name``: its entry, else what a factory pattern makes of it
    (``None`` for a catalog without Kedro's config resolver)."""
    if conf_catalog and name in conf_catalog:
        return conf_catalog[name]
    resolver = getattr(catalog, "config_resolver", None)
    if resolver is None:
        return None
    return resolver.config.get(name) or resolver.resolve_pattern(name)


def uses_dolt(catalog: Any, conf_catalog: dict[str, Any] | None) -> bool:
    """Whether the catalog has a Dolt dataset: an entry or factory pattern in the catalog
    config, or a dataset added in code."""
    if any(is_dolt_config(config) for config in (conf_catalog or {}).values()):
        return True
    get_type = getattr(catalog, "get_type", None)
    if get_type is None:
        return False
    return any("dolt" in (get_type(name) or "").lower() for name in catalog)


def _serve_run(catalog: Any, pipeline: Any, *, eager: bool) -> RunServers:
    """Serve the run's local repositories (:mod:`kedro_dolt.engine.run_server`): those the
    pipeline's datasets use start now, in the background (or, ``eager``: ParallelRunner,
    whose workers cannot start one, before the run goes on); a repository made during the
    run from its first use. A repository whose datasets log in to a remote with a password
    is not served."""
    servers = RunServers.open()
    used = set(getattr(pipeline, "datasets", lambda: ())())
    start: dict[Path, str] = {}
    for name, dataset in _dolt_datasets(catalog, pipeline):
        engine = dataset.engine
        remote = getattr(dataset, "_remote", None)
        if remote is not None and remote.user is not None:
            servers.exclude(engine.database)
        elif name in used and engine.exists():
            start.setdefault(engine.database, engine.binary)
        elif name in used and not start:
            servers.prepare(engine.binary)  # a repository the run will create
    if eager:
        for repository, binary in start.items():
            servers.serve(repository, binary)
    else:  # the start overlaps the first nodes; a dataset that needs it first waits for it
        servers.serve_soon(start)
    return servers


def _dolt_datasets(catalog: Any, pipeline: Any) -> list[tuple[str, Any]]:
    """The run's Dolt table datasets that can be built (the others fail in their nodes),
    by name: catalog entries, and what the pipeline resolves from factory patterns."""
    names = set(catalog) | set(getattr(pipeline, "datasets", lambda: ())())
    found = []
    for name in sorted(names):
        try:
            dataset = catalog.get(name)
        except Exception:
            continue
        if isinstance(getattr(dataset, "engine", None), DoltCLIEngine):
            found.append((name, dataset))
    return found


def _engines_of(catalog: Any, records: list[ActionRecord]) -> dict[str, Any]:
    """The engines (credentials included) of the databases the records name, from the
    datasets that made them: a record names its database by location only."""
    engines: dict[str, Any] = {}
    for name in sorted({r.dataset for r in records if r.dataset}):
        try:
            engine = getattr(catalog.get(name), "engine", None)
        except Exception:
            continue
        if engine is not None:
            engines.setdefault(engine.location, engine)
    return engines


def _read_spool(path: str | None) -> list[ActionRecord]:
    if not path or not Path(path).exists():
        return []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [ActionRecord.from_dict(json.loads(line)) for line in lines if line.strip()]


def summarize(records: list[ActionRecord]) -> dict[str, dict[str, Any]]:
    """Per database: branches touched, first and last commit, tables written with changes."""
    summary: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = summary.setdefault(
            record.database,
            {"branches": [], "first_commit": None, "last_commit": None, "tables_written": {}},
        )
        if record.branch and record.branch not in entry["branches"]:
            entry["branches"].append(record.branch)
        if record.kind != "save":
            continue
        entry["first_commit"] = entry["first_commit"] or record.from_commit
        entry["last_commit"] = record.to_commit
        table = entry["tables_written"].setdefault(
            record.table, {"commits": 0, "added": 0, "modified": 0, "deleted": 0}
        )
        table["commits"] += int(record.committed)
        table["added"] += record.rows_added
        table["modified"] += record.rows_modified
        table["deleted"] += record.rows_deleted
    return summary


def run_level_branch(runtime_params: dict[str, Any] | None) -> tuple[str | None, bool]:
    """``--params dolt_branch=NAME,dolt_merge=true``: the run-level branch (validated) and
    whether a successful run merges it back; ``kedro dolt plan`` applies it as the run."""
    params = runtime_params or {}
    branch = params.get("dolt_branch")
    branch = validate_branch(str(branch), key="dolt_branch") if branch is not None else None
    merge = str(params.get("dolt_merge", "")).lower() in ("true", "1", "yes")
    if merge and branch is None:
        raise DoltError(
            "dolt_merge=true needs a run-level branch to merge.",
            fix="run with --params dolt_branch=NAME,dolt_merge=true.",
        )
    return branch, merge


class DoltHooks:
    def __init__(self) -> None:
        self._config = HookConfig()
        self._merge_back = False
        self._servers: RunServers | None = None
        self.active = False  # whether this session's catalog has a Dolt dataset

    # -- run context -------------------------------------------------------------------------

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        # Before the catalog is built, so relative databases resolve against the project.
        run_context.process.project_root = Path(context.project_path)
        self._config = self._load_config(context)

    @staticmethod
    def _load_config(context: Any) -> HookConfig:
        loader = context.config_loader
        patterns = getattr(loader, "config_patterns", None)
        if patterns is None:  # a custom loader without patterns: defaults
            return HookConfig()
        patterns.setdefault("dolt", CONFIG_PATTERNS)
        try:
            raw = loader["dolt"]
        except MissingConfigException:  # no dolt.yml: defaults
            raw = {}
        unknown = sorted(set(raw) - {"manifest_dir", "run_server"})
        if unknown:
            logger.warning("Ignoring unknown key(s) %s in dolt.yml.", unknown, extra=_NO_MARKUP)
        return HookConfig(
            manifest_dir=str(raw.get("manifest_dir", DEFAULT_MANIFEST_DIR)),
            run_server=run_server.switch(raw.get("run_server", True), setting="run_server"),
        )

    def _manifest_dir(self) -> Path:
        configured = Path(os.environ.get(MANIFEST_DIR_ENV) or self._config.manifest_dir)
        if configured.is_absolute():
            return configured
        return (run_context.process.project_root or Path.cwd()) / configured

    @hook_impl
    def after_catalog_created(
        self, catalog: Any, conf_catalog: dict[str, Any], load_versions: dict[str, str]
    ) -> None:
        self.active = uses_dolt(catalog, conf_catalog)
        if not self.active:
            return
        _show_info()
        for name, value in sorted((load_versions or {}).items()):
            config = entry_config(catalog, name, conf_catalog)
            if is_dolt_config(config) and not config.get("versioned"):
                # Kedro ignores the load version of an unversioned dataset without a word.
                logger.warning(
                    "--load-versions %s:%s is ignored: %s is not versioned. Fix: add "
                    "`versioned: true` to its catalog entry.",
                    name,
                    value,
                    name,
                    extra=_NO_MARKUP,
                )

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if not self.active:
            return
        branch, self._merge_back = run_level_branch(run_params.get("runtime_params"))
        run_id = str(run_params.get("run_id"))
        spool = self._manifest_dir() / f".{run_id}.jsonl"
        spool.unlink(missing_ok=True)
        run_context.start_run(
            run_id=run_id,
            pipeline=",".join(run_params.get("pipeline_names") or ["__default__"]),
            branch=branch,
            spool=str(spool),
        )
        _listen()
        if self._config.run_server and run_server.enabled():
            parallel = "Parallel" in str(run_params.get("runner"))
            self._servers = _serve_run(catalog, pipeline, eager=parallel)

    # pluggy passes only arguments without defaults. Kedro saves a node's outputs after
    # after_node_run, so the node stays current until the next node starts in this thread.
    @hook_impl
    def before_node_run(self, node: Any, run_id: str | None) -> None:
        _listen()
        run_context.set_node(node.name, run_id)

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node: Any) -> None:
        _listen()
        run_context.set_node(node.name)
        run_context.set_dataset(dataset_name)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        run_context.set_dataset(None)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, node: Any) -> None:
        _listen()
        run_context.set_dataset(dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        run_context.set_dataset(None)

    # -- end of run --------------------------------------------------------------------------

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        if not run_context.run_value("spool"):  # not a run that uses Dolt
            return
        try:
            records = _read_spool(run_context.run_value("spool"))
            merged = self._merge_run_branch(records, catalog) if self._merge_back else []
            self._finish(run_params, records, status="completed", merged=merged)
        finally:
            self._end()

    @hook_impl
    def on_pipeline_error(self, run_params: dict[str, Any]) -> None:
        if not run_context.run_value("spool"):
            return
        try:
            records = _read_spool(run_context.run_value("spool"))
            branch = run_context.run_branch()
            saved = sorted({r.database for r in records if r.kind == "save"})
            if branch and saved:
                bases = sorted({r.base_branch for r in records if r.base_branch})
                logger.warning(
                    "kedro run failed: the Dolt data it saved is on branch %r of %s; "
                    "the datasets' own branches (%s) are untouched.",
                    branch,
                    ", ".join(saved),
                    ", ".join(bases),
                    extra=_NO_MARKUP,
                )
            self._finish(run_params, records, status="failed", merged=[])
        finally:
            self._end()

    def _end(self) -> None:
        spool = run_context.run_value("spool")
        if spool:
            Path(spool).unlink(missing_ok=True)
        run_context.clear()
        self._merge_back = False
        if self._servers is not None:
            self._servers.close()
            self._servers = None

    def _merge_run_branch(self, records: list[ActionRecord], catalog: Any) -> list[dict[str, Any]]:
        """Merge the run branch into each dataset's own branch, per database."""
        branch = run_context.run_branch()
        assert branch is not None  # before_pipeline_run refuses dolt_merge without it
        targets = sorted(
            {(r.database, r.base_branch) for r in records if r.kind == "save" and r.base_branch}
        )
        engines = _engines_of(catalog, records)
        merged, failures = [], []
        for database, base in targets:
            engine = engines.get(database)
            if engine is None:
                failures.append(f"{database}: no dataset of the catalog reaches it any more")
                continue
            try:
                if not engine.branch_exists(base):
                    engine.create_branch(base, branch)
                    result = {"database": database, "into": base, "created": True}
                else:
                    run_id = run_context.current_run_id()
                    message = CommitMessage(
                        f"kedro-dolt: merge run branch {branch} into {base}",
                        {"run_id": run_id} if run_id else {},
                    )
                    outcome = engine.merge(branch, base, message=message, on_conflict="fail")
                    result = {"database": database, **outcome.to_dict()}
            except DoltError as exc:
                failures.append(f"{database}: {exc}")
                continue
            merged.append(result)
            logger.info(
                "Dolt: merged run branch %s into %s@%s",
                branch,
                Path(database).name,
                base,
                extra=_NO_MARKUP,
            )
        if failures:
            raise DoltError(
                f"The run succeeded but merging branch {branch!r} back failed for: "
                + "; ".join(failures),
                fix=f"the run's data stays on branch {branch!r}: merge it by hand "
                "(`dolt merge`) after resolving the conflict.",
            )
        return merged

    def _finish(
        self,
        run_params: dict[str, Any],
        records: list[ActionRecord],
        *,
        status: str,
        merged: list[dict[str, Any]],
    ) -> None:
        summary = summarize(records)
        for database, entry in summary.items():
            tables = ", ".join(
                f"{t} ({s['commits']} commits, +{s['added']} ~{s['modified']} -{s['deleted']})"
                for t, s in entry["tables_written"].items()
            )
            made = sum(s["commits"] for s in entry["tables_written"].values())
            commits = (
                f"commits {_short(entry['first_commit'])}..{_short(entry['last_commit'])}"
                if made
                else "no commits"
            )
            logger.info(
                "Dolt summary for %s: branches %s; %s; tables written: %s",
                Path(database).name,
                ", ".join(entry["branches"]) or "-",
                commits,
                tables or "none",
                extra=_NO_MARKUP,
            )
        decisions = run_context.process.decisions
        if not records and not decisions:
            return
        run_id = str(run_params.get("run_id"))
        manifest = {
            "run_id": run_id,
            "status": status,
            "pipeline": run_context.current_pipeline(),
            "run_branch": run_context.run_branch(),
            "merged": merged,
            "summary": summary,
            "records": [r.to_dict() for r in records],
        }
        if decisions:  # an IncrementalRunner's run: every node, run, skipped or restored
            manifest["nodes"] = decisions
        path = self._manifest_dir() / f"{run_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        logger.info("Dolt run manifest: %s", path, extra=_NO_MARKUP)


dolt_hooks = DoltHooks()
