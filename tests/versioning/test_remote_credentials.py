"""Remotes that ask for credentials, with real Dolt: a ``dolt sql-server`` remotesapi whose
user has a password, on the CLI and the server engine, and an ``aws://`` remote on a local
moto server (S3 + DynamoDB)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset, metadata
from tests.conftest import dolt_rows
from tests.support.dolt_server import DoltServer, dolt_servers, free_port

KEY = {"primary_key": "id"}
USER = "kedro"
PASSWORD = "Corr3ct-h0rse-pw"  # the remote user's password on the remote's server
WRONG = "Wr0ng-b4ttery-pw"
ROOT_PASSWORD = "r00t-pw"  # set on the remote's root: anonymous clone/fetch/push are refused


@dataclass
class AuthRemote:
    """A database served over HTTP by a running dolt sql-server (its remotesapi)."""

    server: DoltServer
    url: str


@pytest.fixture
def servers() -> Iterator[Callable[..., DoltServer]]:
    """``DoltServer.start``; every server started is stopped when the test ends."""
    with dolt_servers() as start:
        yield start


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own DOLT_REMOTE_PASSWORD must not make these tests pass."""
    monkeypatch.delenv("DOLT_REMOTE_PASSWORD", raising=False)


@pytest.fixture
def auth_remote(
    tmp_path: Path, servers: Callable[..., DoltServer], companies: pd.DataFrame
) -> AuthRemote:
    """``http://127.0.0.1:P/warehouse`` holding main with table ``c``; only ``kedro`` with
    PASSWORD (and CLONE_ADMIN) gets in. The server is stopped when the test ends."""
    data = tmp_path / "remote-server"
    DoltTableDataset(database=str(data / "warehouse"), table="c", save_args=KEY).save(companies)
    server = servers(data, remotesapi_port=0)
    server.create_user(USER, PASSWORD, clone_admin=True)
    # Without a password on root, Dolt lets anonymous requests in as root.
    server.execute(f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{ROOT_PASSWORD}'")
    return AuthRemote(server, f"http://127.0.0.1:{server.remotesapi_port}/warehouse")


def dataset(
    path: Path, url: str, password: str | None = PASSWORD, *, pull: bool = True, **kwargs
) -> DoltTableDataset:
    credentials = {"remote_password": password} if password is not None else None
    return DoltTableDataset(
        database=str(path),
        table="c",
        remote={"name": "origin", "url": url, "user": USER, "pull": pull},
        credentials=credentials,
        **{"save_args": KEY, **kwargs},
    )


def dolt_as_user(cwd: Path, *args: str) -> str:
    """The real dolt binary logged in as USER (``--user`` goes in ``args``)."""
    proc = subprocess.run(
        ["dolt", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "DOLT_REMOTE_PASSWORD": PASSWORD},
    )
    assert proc.returncode == 0, f"dolt {' '.join(args)} failed: {proc.stderr or proc.stdout}"
    return proc.stdout


def remote_rows(url: str, tmp_path: Path, name: str = "check") -> list[dict]:
    """The remote's ``c`` as a fresh authenticated clone sees it."""
    dolt_as_user(tmp_path, "clone", "--user", USER, url, name)
    return dolt_rows(tmp_path / name, "SELECT id, employees FROM c ORDER BY id")


def error_texts(exc: BaseException) -> str:
    """The error and every error it was raised from, with the commands they ran."""
    texts = []
    while exc is not None:
        texts += [str(exc), repr(exc), " ".join(getattr(exc, "args_run", []))]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "\n".join(texts)


class TestHTTPRemoteCLIEngine:
    def test_clone_on_first_load(self, tmp_path, auth_remote, companies):
        local = tmp_path / "local"
        pd.testing.assert_frame_equal(dataset(local, auth_remote.url).load(), companies)
        assert dolt_rows(local, "SELECT name, url FROM dolt_remotes") == [
            {"name": "origin", "url": auth_remote.url}
        ]
        assert "DOLT_REMOTE_PASSWORD" not in os.environ  # only the dolt child had it

    def test_push_after_save(self, tmp_path, auth_remote, companies):
        seen: list = []
        unsubscribe = metadata.subscribe(seen.append)
        try:
            dataset(tmp_path / "local", auth_remote.url).save(companies.head(2))
        finally:
            unsubscribe()
        assert [r.pushed for r in seen if r.kind == "save"] == [True]
        assert [r["id"] for r in remote_rows(auth_remote.url, tmp_path)] == [1, 2]

    def test_pull_before_save(self, tmp_path, auth_remote, companies):
        writer = dataset(tmp_path / "writer", auth_remote.url, save_args={**KEY, "mode": "upsert"})
        writer.load()  # cloned now; the remote moves on behind the writer's back
        dolt_as_user(tmp_path, "clone", "--user", USER, auth_remote.url, "other")
        other = tmp_path / "other"
        dolt_as_user(other, "sql", "-q", "UPDATE c SET employees = 1 WHERE id = 1")
        dolt_as_user(other, "commit", "-am", "elsewhere")
        dolt_as_user(other, "push", "--user", USER, "origin", "main")

        seen: list = []
        unsubscribe = metadata.subscribe(seen.append)
        try:
            writer.save(pd.DataFrame({"id": [3], "name": ["Initech"], "employees": [36]}))
        finally:
            unsubscribe()
        (record,) = [r for r in seen if r.kind == "save"]
        assert record.pulled and record.pulled["fast_forward"]  # fetched with the credentials
        assert record.pushed
        employees = {r["id"]: r["employees"] for r in remote_rows(auth_remote.url, tmp_path)}
        assert employees == {1: 1, 2: 200, 3: 36}

    def test_wrong_password_fails_clearly_and_never_shows_it(self, tmp_path, auth_remote, caplog):
        caplog.set_level(logging.DEBUG)
        local = tmp_path / "local"
        ds = dataset(local, auth_remote.url, password=WRONG)
        with pytest.raises(DatasetError) as caught:
            ds.load()
        message = str(caught.value)
        assert "Cannot clone" in message
        assert f"remote.user ({USER!r})" in message
        assert "credentials.remote_password" in message
        assert "Access denied for user 'kedro'" in message  # Dolt's own words
        assert not local.exists()  # a failed clone leaves nothing behind
        for text in (error_texts(caught.value), repr(ds), str(ds._describe()), caplog.text):
            assert WRONG not in text
        assert ds._describe()["remote"]["user"] == USER

    def test_wrong_password_on_push_of_an_existing_clone(self, tmp_path, auth_remote, companies):
        local = tmp_path / "local"
        dataset(local, auth_remote.url).load()
        with pytest.raises(DatasetError, match=r"credentials\.remote_password") as caught:
            dataset(local, auth_remote.url, password=WRONG, pull=False).save(companies)
        assert "Cannot push 'main'" in str(caught.value)
        assert WRONG not in error_texts(caught.value)

    def test_a_user_without_password_is_told_where_the_password_goes(self, tmp_path, auth_remote):
        with pytest.raises(DatasetError) as caught:
            dataset(tmp_path / "local", auth_remote.url, password=None).load()
        assert "set remote_password in the dataset's credentials" in str(caught.value)
        assert "must set DOLT_REMOTE_PASSWORD" in str(caught.value)

    def test_no_user_on_a_remote_that_asks_for_one(self, tmp_path, auth_remote):
        ds = DoltTableDataset(
            database=str(tmp_path / "local"), table="c", remote={"url": auth_remote.url}
        )
        with pytest.raises(DatasetError, match=r"set remote\.user and the user's password"):
            ds.load()


class TestRemoteCredentialsConfig:
    def test_password_in_the_catalog_is_refused(self, tmp_path):
        with pytest.raises(DatasetError, match="remote_password") as caught:
            DoltTableDataset(
                database=str(tmp_path / "w"),
                table="c",
                remote={"url": "http://127.0.0.1:1/w", "user": USER, "password": PASSWORD},
            )
        assert PASSWORD not in str(caught.value)

    def test_password_without_user_is_refused(self, tmp_path):
        with pytest.raises(DatasetError, match="remote has no user"):
            DoltTableDataset(
                database=str(tmp_path / "w"),
                table="c",
                remote={"url": "http://127.0.0.1:1/w"},
                credentials={"remote_password": PASSWORD},
            )

    def test_password_for_a_server_engine_is_refused(self):
        with pytest.raises(DatasetError, match="DOLT_REMOTE_PASSWORD") as caught:
            DoltTableDataset(
                database="warehouse",
                table="c",
                remote={"url": "http://127.0.0.1:1/w", "user": USER},
                credentials={"con": "mysql://root@127.0.0.1:1", "remote_password": PASSWORD},
            )
        assert "cannot reach a dolt sql-server" in str(caught.value)
        assert PASSWORD not in str(caught.value)

    def test_repr_and_describe_show_the_user_not_the_password(self, tmp_path):
        ds = dataset(tmp_path / "w", "http://127.0.0.1:1/w")
        assert PASSWORD not in repr(ds)
        assert PASSWORD not in str(ds._describe())
        assert PASSWORD not in repr(ds._remote)
        assert ds._describe()["remote"]["user"] == USER


class TestHTTPRemoteServerEngine:
    def server_dataset(self, server: DoltServer, url: str) -> DoltTableDataset:
        return DoltTableDataset(
            database="warehouse",
            table="c",
            remote={"name": "origin", "url": url, "user": USER},
            save_args=KEY,
            credentials={"con": server.url()},
        )

    def test_clone_with_the_password_in_the_servers_env(
        self, tmp_path, auth_remote, servers, companies
    ):
        engine_server = servers(tmp_path / "engine-server", env={"DOLT_REMOTE_PASSWORD": PASSWORD})
        ds = self.server_dataset(engine_server, auth_remote.url)
        pd.testing.assert_frame_equal(ds.load(), companies)  # dolt_clone('--user', ...)
        ds.save(companies.head(2))  # dolt_fetch then dolt_push, '--user' each
        assert [r["id"] for r in remote_rows(auth_remote.url, tmp_path)] == [1, 2]

    def test_fetch_and_push_with_the_password_in_the_servers_env(
        self, tmp_path, auth_remote, servers, companies
    ):
        # A database the server already has: a clone through the server would let it keep
        # the user for later fetches and pushes, hiding a missing '--user' there.
        data = tmp_path / "engine-server"
        data.mkdir()
        dolt_as_user(data, "clone", "--user", USER, auth_remote.url, "warehouse")
        dolt_as_user(data / "warehouse", "sql", "-q", "UPDATE c SET employees = 1 WHERE id = 1")
        dolt_as_user(data / "warehouse", "commit", "-am", "ahead of the dataset")
        dolt_as_user(data / "warehouse", "push", "--user", USER, "origin", "main")
        dolt_as_user(data / "warehouse", "reset", "--hard", "HEAD~1")  # behind the remote
        engine_server = servers(data, env={"DOLT_REMOTE_PASSWORD": PASSWORD})
        ds = self.server_dataset(engine_server, auth_remote.url)
        assert ds.load()["employees"].tolist() == [1, 200, 35]  # dolt_fetch('--user', ...)
        ds.save(companies.head(2))  # dolt_push('--user', ...)
        assert [r["id"] for r in remote_rows(auth_remote.url, tmp_path)] == [1, 2]

    def test_a_server_without_the_password_is_told_to_carry_it(
        self, tmp_path, auth_remote, servers
    ):
        engine_server = servers(tmp_path / "engine-server")
        with pytest.raises(DatasetError) as caught:
            self.server_dataset(engine_server, auth_remote.url).load()
        message = str(caught.value)
        assert "restart it with DOLT_REMOTE_PASSWORD set" in message
        assert "must set DOLT_REMOTE_PASSWORD" in message


# -- aws:// on a local moto server ------------------------------------------------------------

BUCKET = "kedro-dolt-remote"
MANIFEST_TABLE = "kedro-dolt-manifest"


def _moto_server_binary() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else shutil.which("moto_server")


@pytest.fixture
def aws_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``aws://[table:bucket]/warehouse`` on a moto server, stopped when the test ends. The
    AWS SDK settings go in the environment, which every dolt child inherits."""
    import boto3  # the dev extra's moto[server] brings it: a missing one fails, not skips

    binary = _moto_server_binary()
    assert binary is not None, "moto_server is missing: `make python` (the dev extra) installs it"
    port = free_port()
    log = open(tmp_path / "moto.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, (tmp_path / "moto.log").read_text()
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.1)
        settings = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_REGION": "us-east-1",  # Dolt's Go SDK
            "AWS_DEFAULT_REGION": "us-east-1",  # boto3
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb").create_table(
            TableName=MANIFEST_TABLE,
            KeySchema=[{"AttributeName": "db", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "db", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield f"aws://[{MANIFEST_TABLE}:{BUCKET}]/warehouse"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


class TestAWSRemote:
    def test_push_then_clone(self, tmp_path, aws_remote, companies):
        writer = DoltTableDataset(
            database=str(tmp_path / "writer"),
            table="c",
            remote={"url": aws_remote},
            save_args=KEY,
        )
        writer.save(companies)  # an empty remote: a new repository, pushed after the save
        reader = DoltTableDataset(
            database=str(tmp_path / "reader"), table="c", remote={"url": aws_remote}
        )
        pd.testing.assert_frame_equal(reader.load(), companies)  # cloned from S3 + DynamoDB
        writer.save(companies.head(2))
        assert reader.load()["id"].tolist() == [1, 2]  # pulled

    def test_missing_aws_credentials_mention_them(self, tmp_path, aws_remote, monkeypatch):
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        reader = DoltTableDataset(
            database=str(tmp_path / "reader"), table="c", remote={"url": aws_remote}
        )
        with pytest.raises(DatasetError, match="AWS_ACCESS_KEY_ID"):
            reader.load()
