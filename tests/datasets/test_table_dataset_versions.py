"""Versions: time refs, Kedro's Version (hash, tag, branch, run id), tags, --load-versions."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from kedro_dolt import DoltTableDataset
from kedro_dolt.naming import run_id_time
from kedro_dolt.versioning.commits import parse_trailers
from tests.conftest import ENGINES, Repo, ServerRepo, dolt, dolt_rows, state
from tests.support.kedro_project import kedro_cli, make_project, on_database

#: Every test taking ``repo`` runs on the CLI and the server engine (see conftest).
BOTH_ENGINES = True

KEY = {"primary_key": "id"}


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


class TestTimeRefs:
    def test_branch_at_a_time(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args=KEY)
        dataset.save(companies)
        time.sleep(0.05)
        between = utc_now()
        time.sleep(0.05)
        dataset.save(companies.assign(employees=0))
        for ref in (f"main@{{{between}}}", f"@{{{between.replace(' ', 'T')}}}"):
            at = DoltTableDataset(**repo.args, table="c", ref=ref).load()
            pd.testing.assert_frame_equal(at, companies)

    def test_time_before_the_table_existed(self, repo, companies):
        DoltTableDataset(**repo.args, table="c").save(companies)
        dataset = DoltTableDataset(**repo.args, table="c", ref="main@{2000-01-01}")
        with pytest.raises(DatasetError, match="names no commit"):
            dataset.load()
        assert not dataset.exists()


class TestVersionArgument:
    @pytest.fixture
    def two_runs(self, repo, companies):
        """Saves as two Kedro runs would (save version = run id); returns the run ids."""
        runs = ["2026-11-24T07.01.12.421Z", "2026-11-24T08.00.00.000Z"]
        for run_id, frame in zip(runs, [companies, companies.assign(employees=0)], strict=True):
            DoltTableDataset(
                **repo.args, table="c", save_args=KEY, version=Version(None, run_id)
            ).save(frame)
        return runs

    def test_save_version_is_recorded_as_run_id(self, repo, two_runs):
        messages = [r["message"] for r in dolt_rows(repo, "SELECT message FROM dolt_log LIMIT 2")]
        assert [parse_trailers(m)["run_id"] for m in messages] == two_runs[::-1]

    def test_load_version_by_run_id_hash_tag_and_branch(self, repo, companies, two_runs):
        first_hash = dolt_rows(repo, "SELECT dolt_hashof('main~1') AS h")[0]["h"]
        dolt(repo, "tag", "good", first_hash)
        for value in (two_runs[0], first_hash, "good"):
            loaded = DoltTableDataset(**repo.args, table="c", version=Version(value, None)).load()
            pd.testing.assert_frame_equal(loaded, companies)
        latest = DoltTableDataset(**repo.args, table="c", version=Version("main", None))
        assert latest.load()["employees"].tolist() == [0, 0, 0]

    def test_ref_may_be_a_run_id(self, repo, companies, two_runs):
        """``ref:`` takes a Kedro run id like every other ref (issue 19)."""
        pinned = DoltTableDataset(**repo.args, table="c", ref=two_runs[0])
        pd.testing.assert_frame_equal(pinned.load(), companies)

    def test_run_without_a_commit_reads_the_state_at_its_start(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args=KEY)
        dataset.save(companies)
        time.sleep(0.05)
        # A run that started now and saved nothing new for this table (no trailer of it).
        quiet_run = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H.%M.%S.%f")[:-3] + "Z"
        time.sleep(0.05)
        dataset.save(companies.assign(employees=0))
        as_seen = DoltTableDataset(**repo.args, table="c", version=Version(quiet_run, None))
        pd.testing.assert_frame_equal(as_seen.load(), companies)
        before_all = DoltTableDataset(
            **repo.args, table="c", version=Version("2000-01-01T00.00.00.000Z", None)
        )
        with pytest.raises(DatasetError, match="made no commit of table"):
            before_all.load()

    def testrun_id_time(self):
        assert run_id_time("2026-11-24T07.01.12.421Z") == "2026-11-24 07:01:12.421"

    def test_bad_load_version(self, repo):
        with pytest.raises(DatasetError, match="Invalid load version"):
            DoltTableDataset(**repo.args, table="c", version=Version("a b", None))


class TestTags:
    def test_tag_each_save(self, repo, companies):
        dataset = DoltTableDataset(
            **repo.args,
            table="c",
            save_args={**KEY, "tag": "{table}-{run_id}"},
            version=Version(None, "2026-11-24T07.01.12.421Z"),
        )
        dataset.save(companies)
        tags = dolt_rows(repo, "SELECT tag_name, tag_hash FROM dolt_tags")
        assert tags == [
            {"tag_name": "c-2026-11-24T07.01.12.421Z", "tag_hash": state(repo).heads["main"]}
        ]
        ref = DoltTableDataset(**repo.args, table="c", ref="c-2026-11-24T07.01.12.421Z")
        pd.testing.assert_frame_equal(ref.load(), companies)

    def test_existing_tag_fails_before_saving(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args={"tag": "good"})
        dataset.save(companies)
        before = state(repo)
        with pytest.raises(DatasetError, match=r"Tag 'good' already exists.*nothing was saved"):
            dataset.save(companies.head(1))
        assert state(repo) == before

    def test_bad_tag_template_changes_nothing(self, repo, companies):
        dataset = DoltTableDataset(**repo.args, table="c", save_args={"tag": "{nope}"})
        with pytest.raises(DatasetError, match=r"placeholders \{run_id\}"):
            dataset.save(companies)
        assert not repo.exists()


NODES = """
import pandas as pd


def make_companies(n):
    return pd.DataFrame({"id": list(range(n)), "name": [f"c{i}" for i in range(n)]})


def count(companies):
    return pd.DataFrame({"id": [0], "n": [len(companies)]})
"""

PIPELINES = """
make = pipeline([node(make_companies, "params:n", "companies", name="make_companies")])
report = pipeline([node(count, "companies", "company_count", name="count_companies")])
return {"__default__": make + report, "report": report}
"""

CATALOG = """
companies:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: companies
  versioned: true
  save_args:
    primary_key: id
company_count:
  type: kedro_dolt.DoltTableDataset
  database: data/warehouse
  table: company_count
  save_args:
    primary_key: id
"""


@pytest.fixture(scope="module", params=ENGINES)
def project(request, tmp_path_factory, dolt_home):
    """Two real runs: 3 companies, then 5, on a local repository or (server) a database
    on the session's dolt sql-server. Returns (project, first run id, its commit)."""
    where = tmp_path_factory.mktemp("versions")
    root = make_project(
        where / "proj",
        "versions_demo",
        nodes=NODES,
        pipeline=PIPELINES,
        catalog=CATALOG,
    )
    if request.param == "server":
        database: Path = ServerRepo.on(
            request.getfixturevalue("shared_server"), f"v{uuid.uuid4().hex[:12]}"
        )
    else:
        database = Repo(root / "data" / "warehouse")
    on_database(root, database)
    for n in (3, 5):
        result = kedro_cli(root, "run", "--params", f"n={n}")
        assert result.returncode == 0, result.stderr
        assert "did not match" not in result.stdout + result.stderr
    saves = dolt_rows(
        database,
        "SELECT commit_hash, message FROM dolt_log WHERE message LIKE 'kedro: save companies%'",
    )
    first = saves[-1]
    dolt(database, "sql", "-q", f"CALL dolt_tag('first-companies', '{first['commit_hash']}')")
    PROJECT_DATABASES[root] = database
    return root, parse_trailers(first["message"])["run_id"], first["commit_hash"]


#: The database each project's datasets use.
PROJECT_DATABASES: dict[Path, Path] = {}


class TestLoadVersionsThroughKedroRun:
    def _count_with(self, project, version: str) -> tuple[int, str]:
        result = kedro_cli(
            project, "run", "--pipeline", "report", "--load-versions", f"companies:{version}"
        )
        assert result.returncode == 0, result.stderr
        count = DoltTableDataset(**PROJECT_DATABASES[project].args, table="company_count")
        return int(count.load()["n"].iloc[0]), result.stdout + result.stderr

    @pytest.mark.parametrize("kind", ["commit", "tag", "run_id"])
    def test_load_versions(self, project, kind):
        root, run_id, commit = project
        value = {"commit": commit, "run_id": run_id, "tag": "first-companies"}[kind]
        n, output = self._count_with(root, value)
        assert n == 3
        assert "did not match" not in output
        n_latest, _ = self._count_with(root, "main")
        assert n_latest == 5
