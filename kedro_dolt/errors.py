"""The one exception type kedro-dolt raises: Kedro's own ``DatasetError``."""

from __future__ import annotations

from kedro.io.core import DatasetError


class DoltError(DatasetError):
    """A Dolt operation failed.

    Kedro re-wraps other exceptions without their details, so every failure surfaces as a
    ``DatasetError`` that carries what went wrong, how to fix it and Dolt's own message.
    """

    def __init__(self, what: str, *, fix: str = "", dolt_message: str = "") -> None:
        self.what = what
        self.fix = fix
        self.dolt_message = dolt_message.strip()
        parts = [what]
        if fix:
            parts.append(f"Fix: {fix}")
        if self.dolt_message:
            parts.append(f"Dolt said: {self.dolt_message}")
        super().__init__("\n".join(parts))


class DoltCommandError(DoltError):
    """The ``dolt`` process exited non-zero; ``dolt_message`` holds its stderr."""

    def __init__(self, args: list[str], returncode: int, stderr: str, stdout: bytes = b"") -> None:
        self.args_run = args
        self.returncode = returncode
        self.stdout = stdout  # results of the statements that ran before the failure
        super().__init__(
            f"`dolt {' '.join(args)}` failed with exit code {returncode}.",
            dolt_message=stderr,
        )
