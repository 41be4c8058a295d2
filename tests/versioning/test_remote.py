"""Remotes with file:// urls: clone on first use, pull before loads and saves, push after."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset, Remote, metadata
from tests.conftest import dolt, dolt_rows, state

KEY = {"primary_key": "id"}


@pytest.fixture
def remote_url(tmp_path, companies) -> str:
    """A file:// remote holding main with table ``c`` (the companies)."""
    seed = tmp_path / "seed"
    DoltTableDataset(database=str(seed), table="c", save_args=KEY).save(companies)
    store = tmp_path / "remote-store"
    store.mkdir()
    url = f"file://{store}"
    dolt(seed, "remote", "add", "origin", url)
    dolt(seed, "push", "origin", "main")
    return url


def fresh_clone(url: str, path: Path) -> Path:
    dolt(path.parent, "clone", url, path.name)
    return path


def dataset(path: Path, url: str, **kwargs) -> DoltTableDataset:
    return DoltTableDataset(
        database=str(path),
        table="c",
        remote={"name": "origin", "url": url},
        save_args=KEY,
        **kwargs,
    )


class TestRemote:
    def test_clone_on_first_use(self, tmp_path, remote_url, companies):
        local = tmp_path / "local"
        loaded = dataset(local, remote_url).load()
        pd.testing.assert_frame_equal(loaded, companies)
        assert dolt_rows(local, "SELECT name, url FROM dolt_remotes") == [
            {"name": "origin", "url": remote_url}
        ]

    def test_push_after_save_is_visible_in_a_fresh_clone(self, tmp_path, remote_url, companies):
        seen: list = []
        unsubscribe = metadata.subscribe(seen.append)
        try:
            dataset(tmp_path / "local", remote_url).save(companies.head(2))
        finally:
            unsubscribe()
        check = fresh_clone(remote_url, tmp_path / "check")
        assert dolt_rows(check, "SELECT COUNT(*) AS n FROM c")[0]["n"] == 2
        assert [r.pushed for r in seen if r.kind == "save"] == [True]

    def test_pull_before_load_sees_data_pushed_by_another_clone(
        self, tmp_path, remote_url, companies
    ):
        reader = dataset(tmp_path / "reader", remote_url)
        pd.testing.assert_frame_equal(reader.load(), companies)
        other = fresh_clone(remote_url, tmp_path / "other")
        dolt(other, "sql", "-q", "UPDATE c SET employees = 1 WHERE id = 1")
        dolt(other, "commit", "-am", "elsewhere")
        dolt(other, "push", "origin", "main")
        assert reader.load()["employees"].tolist() == [1, 200, 35]

    def test_rejected_push_recovered_by_pull_merge_push(self, tmp_path, remote_url, companies):
        writer = dataset(tmp_path / "writer", remote_url, branch="main")
        writer.load()  # clone now, so the remote moves behind the writer's back
        other = fresh_clone(remote_url, tmp_path / "other")
        dolt(other, "sql", "-q", "UPDATE c SET employees = 1 WHERE id = 1")
        dolt(other, "commit", "-am", "elsewhere")
        dolt(other, "push", "origin", "main")
        # Without pull before save the push is rejected, then recovered by merging.
        writer_no_pull = DoltTableDataset(
            database=str(tmp_path / "writer"),
            table="c",
            remote=Remote(url=remote_url, pull=False),
            save_args=KEY,
        )
        writer_no_pull.save(companies.assign(employees=[10, 200, 7]))
        check = fresh_clone(remote_url, tmp_path / "check")
        employees = dolt_rows(check, "SELECT employees FROM c ORDER BY id")
        assert [r["employees"] for r in employees] == [1, 200, 7]  # both changes survive
        local = state(tmp_path / "writer")
        assert local.heads["main"] == state(check).heads["main"]

    def test_conflict_while_pushing_leaves_both_sides_consistent(
        self, tmp_path, remote_url, companies
    ):
        writer_path = tmp_path / "writer"
        dataset(writer_path, remote_url).load()
        other = fresh_clone(remote_url, tmp_path / "other")
        dolt(other, "sql", "-q", "UPDATE c SET employees = 1 WHERE id = 1")
        dolt(other, "commit", "-am", "elsewhere")
        dolt(other, "push", "origin", "main")
        remote_head = state(other).heads["main"]
        writer = DoltTableDataset(
            database=str(writer_path),
            table="c",
            remote=Remote(url=remote_url, pull=False),
            save_args=KEY,
        )
        with pytest.raises(DatasetError, match=r"(?s)conflicting keys.*'id': 1"):
            writer.save(companies.assign(employees=[2, 200, 35]))
        local = state(writer_path)
        assert not local.dirty_branches and not local.working_changes
        # The local save stays committed (not pushed); nothing half-merged is left.
        assert writer.load()["employees"].tolist() == [2, 200, 35]
        check = fresh_clone(remote_url, tmp_path / "check")
        assert state(check).heads["main"] == remote_head  # the remote was not forced

    def test_unreachable_remote(self, tmp_path, companies):
        local = tmp_path / "local"
        nowhere = DoltTableDataset(
            database=str(local), table="c", remote={"url": f"file://{tmp_path}/missing"}
        )
        with pytest.raises(
            DatasetError, match=r"(?s)Cannot clone .*Fix: check the remote url.*Dolt said"
        ):
            nowhere.load()
        assert not local.exists()

    def test_unusable_remote_on_save_changes_nothing(self, tmp_path, companies):
        local = tmp_path / "local"
        DoltTableDataset(database=str(local), table="c", save_args=KEY).save(companies)
        before = state(local)
        (tmp_path / "a-file").write_text("not a directory")
        broken = DoltTableDataset(
            database=str(local),
            table="c",
            remote={"name": "backup", "url": f"file://{tmp_path}/a-file/store"},
            save_args=KEY,
        )
        with pytest.raises(
            DatasetError, match=r"(?s)Cannot add remote 'backup'.*Fix: check.*Dolt said"
        ):
            broken.save(companies.head(1))
        assert state(local) == before

    @pytest.mark.parametrize(
        ("config", "message"),
        [
            ({"url": "not a url"}, "Invalid remote url"),
            ({"name": "origin", "uri": "file:///x"}, r"Unknown key\(s\) \['uri'\] in remote"),
            ("origin", "Invalid remote 'origin'"),
        ],
    )
    def test_bad_configuration(self, repo, config, message):
        with pytest.raises(DatasetError, match=message):
            DoltTableDataset(database=str(repo), table="c", remote=config)
        assert not repo.exists()

    def test_yaml_and_python_forms_are_equal(self):
        assert Remote.from_config({"name": "origin", "url": "file:///x", "push": False}) == Remote(
            url="file:///x", push=False
        )

    def test_describe_hides_credentials(self):
        remote = Remote(url="https://user:token@doltremoteapi.dolthub.com/org/repo")
        assert "token" not in str(remote.describe())


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry under ``directory``: file contents, ``None`` for directories."""
    return {
        str(p.relative_to(directory)): (None if p.is_dir() else p.read_bytes())
        for p in sorted(directory.rglob("*"))
    }


@pytest.fixture(params=["notes", "fake-manifest"])
def user_dir(request, tmp_path) -> Path:
    """A directory of the user's own files that is not a Dolt remote store."""
    directory = tmp_path / "user-files"
    (directory / "sub").mkdir(parents=True)
    (directory / "sub" / "data.csv").write_text("id,value\n1,2\n")
    if request.param == "notes":
        (directory / "notes.txt").write_text("my notes")
    else:  # a file that happens to be called like Dolt's, with other content
        (directory / "manifest").write_text("shipping manifest\n")
    return directory


class TestForeignRemoteDirectory:
    """A file:// remote at a non-empty directory that is not a Dolt store is refused before
    Dolt writes its store files (manifest, table files, oldgen) among the user's files."""

    MESSAGE = r"(?s)points at .*user-files, which holds other files .*written there.*Fix: "

    def test_clone(self, tmp_path, user_dir):
        before = snapshot(user_dir)
        local = tmp_path / "local"
        dataset = DoltTableDataset(
            database=str(local), table="c", remote={"url": f"file://{user_dir}"}
        )
        with pytest.raises(DatasetError, match=self.MESSAGE):
            dataset.load()
        assert snapshot(user_dir) == before
        assert not local.exists()

    def test_add_remote_and_push(self, tmp_path, user_dir, companies):
        local = tmp_path / "local"
        DoltTableDataset(database=str(local), table="c", save_args=KEY).save(companies)
        before, files = state(local), snapshot(user_dir)
        dataset = DoltTableDataset(
            database=str(local),
            table="c",
            remote={"name": "backup", "url": f"file://{user_dir}"},
            save_args=KEY,
        )
        with pytest.raises(DatasetError, match=self.MESSAGE):
            dataset.save(companies.head(1))
        assert snapshot(user_dir) == files
        assert state(local) == before
        assert "backup" not in dolt(local, "remote", "-v")

    def test_remote_the_repository_already_has(self, tmp_path, user_dir, companies):
        local = tmp_path / "local"
        DoltTableDataset(database=str(local), table="c", save_args=KEY).save(companies)
        dolt(local, "remote", "add", "origin", f"file://{user_dir}")  # writes nothing there
        before, files = state(local), snapshot(user_dir)
        dataset = DoltTableDataset(
            database=str(local), table="c", remote={"pull": False}, save_args=KEY
        )
        with pytest.raises(DatasetError, match=self.MESSAGE):
            dataset.save(companies.head(1))  # would push
        with pytest.raises(DatasetError, match=self.MESSAGE):
            DoltTableDataset(database=str(local), table="c", remote={}).load()  # would fetch
        assert snapshot(user_dir) == files
        assert state(local) == before

    @pytest.mark.parametrize("kind", ["missing", "empty", "space in name"])
    def test_new_or_empty_directory_is_fine(self, tmp_path, companies, kind):
        store = tmp_path / ("new store" if kind == "space in name" else "store")
        if kind != "missing":
            store.mkdir()
        url = f"file://{store}".replace(" ", "%20")
        # The first save tries to clone the empty store (Dolt leaves `oldgen` there), then
        # starts a repository and pushes into it.
        dataset(tmp_path / "local", url).save(companies)
        assert (store / "manifest").is_file()
        check = fresh_clone(url, tmp_path / "check")
        assert dolt_rows(check, "SELECT COUNT(*) AS n FROM c")[0]["n"] == 3
        # A store with data stays usable: a second dataset clones it, a save pushes to it.
        other = dataset(tmp_path / "other", url)
        other.save(companies.head(2))
        assert len(dataset(tmp_path / "third", url).load()) == 2
