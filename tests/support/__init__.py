"""What the test suites share besides fixtures: a real ``dolt sql-server`` (:mod:`.dolt_server`),
snapshots of a repository's whole state (:mod:`.repo_snapshot`), small Kedro projects run by
the real ``kedro`` CLI (:mod:`.kedro_project`), and the repository's root."""

from pathlib import Path

#: The repository's root (where pyproject.toml is).
ROOT = Path(__file__).resolve().parents[2]
