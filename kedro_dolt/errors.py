"""The one exception type kedro-dolt raises: Kedro's own ``DatasetError``."""

from __future__ import annotations

from typing import Any

from kedro.io.core import DatasetError

from .secrets import mask_url_credentials


class DoltError(DatasetError):
    """A Dolt operation failed.

    Kedro re-wraps other exceptions without their details, so every failure surfaces as a
    ``DatasetError`` that carries what went wrong, how to fix it and Dolt's own message.
    Credentials in urls are masked here, where every error is built: Dolt copies remote urls
    into its messages and Kedro logs them.
    """

    def __init__(self, what: str, *, fix: str = "", dolt_message: str = "") -> None:
        self.what = mask_url_credentials(what)
        self.fix = mask_url_credentials(fix)
        self.dolt_message = mask_url_credentials(dolt_message.strip())
        parts = [self.what]
        if self.fix:
            parts.append(f"Fix: {self.fix}")
        if self.dolt_message:
            parts.append(f"Dolt said: {self.dolt_message}")
        super().__init__("\n".join(parts))


class DoltCommandError(DoltError):
    """A ``dolt`` process exited non-zero, or the server refused a statement;
    ``dolt_message`` holds Dolt's message.

    ``results`` are the result sets of the statements that ran before the failure (one list of
    rows per statement that returned rows), so a caller can tell how far a script got.
    ``transient``: nothing changed and the same work may simply be tried again.
    """

    def __init__(
        self,
        args: list[str],
        returncode: int,
        stderr: str,
        stdout: bytes = b"",
        *,
        results: list[list[dict[str, Any]]] | None = None,
        transient: bool = False,
        what: str | None = None,
    ) -> None:
        self.args_run = [mask_url_credentials(arg) for arg in args]  # `dolt clone URL`
        self.returncode = returncode
        # The output of the statements that ran before the failure (masked: a failed
        # `dolt clone` prints its url).
        self.stdout = mask_url_credentials(stdout.decode("utf-8", "replace")).encode("utf-8")
        self.results = results or []
        self.transient = transient
        super().__init__(
            what or f"`dolt {' '.join(self.args_run)}` failed with exit code {returncode}.",
            dolt_message=stderr,
        )
