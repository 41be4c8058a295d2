"""Clean stdout for ``kedro dolt ... --json``, imported at interpreter start-up.

Kedro logs ``Using '.../rich_logging.yml' as logging configuration`` to stdout while
``kedro.framework.cli`` is imported, before any plugin code runs, so a plugin command cannot
keep that line out of its JSON. ``kedro_dolt_json.pth`` imports this module in every Python
process of the environment; only for a ``kedro dolt`` command with ``--json`` does it point
``KEDRO_LOGGING_CONFIG`` (unless already set) at a configuration that logs to stderr.
Standard library only, and it never raises: it runs before anything else.
"""

import os
import sys


def _is_kedro_dolt_json(argv: list[str]) -> bool:
    # `kedro dolt status --json` or `python -m kedro dolt ...` (argv[0] is "-m" this early).
    if "--json" not in argv or len(argv) < 2 or argv[1] != "dolt":
        return False
    program = os.path.basename(argv[0])
    if program == "-m":
        orig = getattr(sys, "orig_argv", [])
        return "-m" in orig and orig[orig.index("-m") + 1 :][:1] == ["kedro"]
    return program in ("kedro", "kedro.exe")


try:
    if _is_kedro_dolt_json(sys.argv):
        os.environ.setdefault(
            "KEDRO_LOGGING_CONFIG",
            os.path.join(os.path.dirname(__file__), "kedro_dolt", "json_logging.yml"),
        )
except Exception:  # never break interpreter start-up
    pass
