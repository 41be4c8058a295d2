"""Remote credentials never reach an error, a log line, an action record or a repr."""

from __future__ import annotations

import json
import logging
import socket
import traceback

import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from kedro_dolt import DoltTableDataset, Remote, metadata
from kedro_dolt.errors import DoltCommandError, DoltError
from kedro_dolt.secrets import mask_url_credentials
from tests.conftest import dolt

SECRET = "s3cr3t"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://user:s3cr3t@host/org/db", "https://user:***@host/org/db"),
        ("http://user:s3cr3t@127.0.0.1:50051/org/db", "http://user:***@127.0.0.1:50051/org/db"),
        ("HTTPS://user:s3cr3t@Host.example/db", "HTTPS://user:***@Host.example/db"),
        (
            "git+https://x-access-token:s3cr3t@github.com/o/r.git",
            "git+https://x-access-token:***@github.com/o/r.git",
        ),
        ("aws://key:s3cr3t@[table:bucket]/db", "aws://key:***@[table:bucket]/db"),
        ("gs://user:s3cr3t@bucket/path", "gs://user:***@bucket/path"),
        # A bare user part is often an access token; an empty password hides nothing.
        ("https://s3cr3t@github.com/org/repo", "https://***@github.com/org/repo"),
        ("https://s3cr3t:@host/db", "https://***@host/db"),
        ("ssh://git@github.com/o/r", "ssh://***@github.com/o/r"),
        # IPv6 hosts, with and without credentials.
        ("https://user:s3cr3t@[::1]:8080/db", "https://user:***@[::1]:8080/db"),
        ("http://[2001:db8::1]:80/db", "http://[2001:db8::1]:80/db"),
        # `@` in a password, encoded or not; `/`, `?`, `#` in one (an invalid url Dolt quotes).
        ("https://user:p@ss@host/db", "https://user:***@host/db"),
        ("https://us%40er:s3%40cr3t@host/db", "https://us%40er:***@host/db"),
        ("https://user:s3/cr3t@host/db", "https://user:***@host/db"),
        ("https://user:s3?cr3t@host/db", "https://user:***@host/db"),
        ("https://user:s3#cr3t@host/db", "https://user:***@host/db"),
        # `@` in a path or a ref is not a credential.
        ("https://host/org/db@v1", "https://host/org/db@v1"),
        ("https://host:8080/org/db@v1", "https://host:8080/org/db@v1"),
        ("file:///srv/a@b/store", "file:///srv/a@b/store"),
        # Secrets in query strings.
        ("https://host/db?token=s3cr3t&branch=main", "https://host/db?token=***&branch=main"),
        ("https://host/db?a=1&password=s3cr3t", "https://host/db?a=1&password=***"),
        (
            "https://b.s3.example/db?X-Amz-Credential=AKIA&X-Amz-Signature=s3cr3t&x=1",
            "https://b.s3.example/db?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
        ),
        ("https://host/db?access_key=s3cr3t#frag", "https://host/db?access_key=***#frag"),
        # Urls inside messages: quoted, in brackets, several at once.
        (
            "could not access dolt url 'https://user:s3cr3t@127.0.0.1:1/org/db': rpc error",
            "could not access dolt url 'https://user:***@127.0.0.1:1/org/db': rpc error",
        ),
        (
            'parse "https://u:s3cr3t@h:x/db": invalid port',
            'parse "https://u:***@h:x/db": invalid port',
        ),
        ("(see https://u:s3cr3t@h/db)", "(see https://u:***@h/db)"),
        (
            "from https://a:s3cr3t@h1/x to http://b:s3cr3t@h2/y\nand file:///z, done",
            "from https://a:***@h1/x to http://b:***@h2/y\nand file:///z, done",
        ),
        ("{'url': 'https://u:s3cr3t@h/db'}", "{'url': 'https://u:***@h/db'}"),
    ],
)
def test_masks_credentials(text, masked):
    assert mask_url_credentials(text) == masked
    assert mask_url_credentials(masked) == masked  # masking twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "",
        "No Dolt repository at /data/warehouse.",
        "https://doltremoteapi.dolthub.com/org/repo",
        "file:///srv/dolt/warehouse",
        "aws://[table:bucket]/db",
        "http://[::1]:8080/db?branch=main&page=2",
        "user:pass@host without a scheme is not a url",
        "email tests@kedro-dolt.invalid and time 12:30",
        "https://host/db?password=&a=1",  # nothing to hide
    ],
)
def test_leaves_text_without_credentials_unchanged(text):
    assert mask_url_credentials(text) == text


def test_every_error_is_masked():
    error = DoltError(
        "Cannot clone https://u:s3cr3t@h/db.",
        fix="check https://u:s3cr3t@h/db",
        dolt_message="could not access 'https://u:s3cr3t@h/db'",
    )
    command = DoltCommandError(["clone", "https://u:s3cr3t@h/db", "."], 1, "https://u:s3cr3t@h")
    for exc in (error, command):
        shown = [str(exc), repr(exc), exc.what, exc.fix, exc.dolt_message, *exc.args]
        assert SECRET not in " ".join(shown)
    assert command.args_run == ["clone", "https://u:***@h/db", "."]


def test_remote_repr_and_describe_are_masked():
    remote = Remote(url="https://user:s3cr3t@doltremoteapi.dolthub.com/org/repo")
    assert remote.describe()["url"] == "https://user:***@doltremoteapi.dolthub.com/org/repo"
    assert SECRET not in repr(remote)
    assert remote.url is not None and SECRET in remote.url  # Dolt still gets the real url


# -- with the real binary: a remote that refuses connections --------------------------------


@pytest.fixture
def secret_url() -> str:
    """An https remote with credentials on a closed local port: Dolt fails fast and quotes it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"https://user:{SECRET}@127.0.0.1:{port}/org/db"


@pytest.fixture
def records():
    seen: list[metadata.ActionRecord] = []
    unsubscribe = metadata.subscribe(seen.append)
    yield seen
    unsubscribe()


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured log record as a handler would print it, tracebacks included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def _error_text(exc: BaseException) -> str:
    """What a traceback of ``exc`` shows: the message and attributes of every chained error."""
    parts = ["".join(traceback.format_exception(exc))]
    while exc is not None:
        parts += [repr(exc), json.dumps(vars(exc), default=str)]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "\n".join(parts)


class TestRealDolt:
    def test_failed_clone(self, tmp_path, secret_url, caplog, records):
        caplog.set_level(logging.DEBUG)
        dataset = DoltTableDataset(
            database=str(tmp_path / "local"), table="c", remote={"url": secret_url}
        )
        with pytest.raises(DatasetError) as raised:
            dataset.load()
        text = _error_text(raised.value)
        assert "could not access dolt url 'https://user:***@127.0.0.1:" in text  # Dolt's words
        assert SECRET not in text
        assert SECRET not in repr(dataset)
        assert SECRET not in json.dumps(dataset._describe(), default=str)
        assert SECRET not in _logged(caplog)
        assert SECRET not in json.dumps([r.to_dict() for r in records], default=str)

    def test_failed_push_through_a_catalog(self, tmp_path, secret_url, companies, caplog):
        DoltTableDataset(
            database=str(tmp_path / "local"), table="c", save_args={"primary_key": "id"}
        ).save(companies.head(1))
        seen: list[metadata.ActionRecord] = []
        unsubscribe = metadata.subscribe(seen.append)
        caplog.set_level(logging.DEBUG)
        catalog = DataCatalog.from_config(
            {
                "companies": {
                    "type": "kedro_dolt.DoltTableDataset",
                    "database": str(tmp_path / "local"),
                    "table": "c",
                    "remote": {"url": secret_url, "pull": False},
                    "save_args": {"primary_key": "id"},
                }
            }
        )
        with pytest.raises(DatasetError) as raised:
            try:
                catalog.save("companies", companies)
            finally:
                unsubscribe()
        text = _error_text(raised.value)
        assert "Cannot push 'main' to remote 'origin'" in text
        assert "https://user:***@127.0.0.1:" in text
        assert SECRET not in text
        assert SECRET not in repr(catalog) + repr(catalog["companies"])
        assert SECRET not in json.dumps(catalog["companies"]._describe(), default=str)
        assert SECRET not in _logged(caplog)
        assert seen == []  # the save raised before recording
        assert SECRET in dolt(tmp_path / "local", "remote", "-v")  # Dolt keeps the real url

    def test_repository_url_differs_from_config(self, tmp_path, companies, caplog):
        local = tmp_path / "local"
        DoltTableDataset(database=str(local), table="c").save(companies)
        dolt(local, "remote", "add", "origin", f"https://user:{SECRET}@127.0.0.1:1/org/db")
        seen: list[metadata.ActionRecord] = []
        unsubscribe = metadata.subscribe(seen.append)
        caplog.set_level(logging.DEBUG)
        dataset = DoltTableDataset(
            database=str(local),
            table="c",
            remote={"url": f"https://other:{SECRET}2@127.0.0.1:1/org/db", "pull": False},
        )
        try:
            assert len(dataset.load()) == 3
        finally:
            unsubscribe()
        assert "points at https://user:***@127.0.0.1:1/org/db, not https://other:***@" in (
            caplog.text
        )
        assert SECRET not in _logged(caplog)
        assert [r.kind for r in seen] == ["load"]
        assert SECRET not in json.dumps([r.to_dict() for r in seen], default=str)
