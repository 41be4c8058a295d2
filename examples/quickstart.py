"""`make demo`: save a DataFrame through DoltTableDataset twice, reload versions, show the log.

Runs in ./demo/ (recreated on every run, so re-running starts from scratch) with its own Dolt
identity, so it works on a fresh machine without any Dolt configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset

ROOT = Path(__file__).resolve().parent.parent / "demo"


def dolt(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["dolt", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "dolt-home").mkdir(parents=True)
    os.environ["DOLT_ROOT_PATH"] = str(ROOT / "dolt-home")
    for key, value in [
        ("user.name", "kedro-dolt demo"),
        ("user.email", "demo@kedro-dolt.invalid"),
        ("metrics.disabled", "true"),
        ("versioncheck.disabled", "true"),
    ]:
        dolt("config", "--global", "--add", key, value, cwd=ROOT)
    database = ROOT / "warehouse"

    companies = DoltTableDataset(
        database=str(database),
        table="companies",
        save_args={"primary_key": "id", "commit_message": "Load companies"},
    )
    first = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["Acme", "Globex", "Initech"],
            "employees": pd.array([120, 3400, None], dtype="Int64"),
            "founded": pd.to_datetime(["1947-05-01", "1989-12-17", "1999-02-19"]),
        }
    )
    companies.save(first)
    companies.save(first)  # unchanged: no new commit
    second = first.assign(employees=pd.array([125, 3400, 80], dtype="Int64"))
    companies.save(
        pd.concat(
            [
                second,
                pd.DataFrame(
                    {
                        "id": [4],
                        "name": ["Umbrella"],
                        "employees": pd.array([9000], dtype="Int64"),
                        "founded": pd.to_datetime(["1968-01-01"]),
                    }
                ),
            ],
            ignore_index=True,
        )
    )

    print("== companies at the head of main")
    print(companies.load().to_string(index=False))
    print("\n== companies one commit earlier (ref: main~1)")
    print(
        DoltTableDataset(database=str(database), table="companies", ref="main~1")
        .load()
        .to_string(index=False)
    )
    print("\n== headcount by version (DoltSQLQueryDataset)")
    print(
        DoltSQLQueryDataset(
            database=str(database),
            sql="SELECT COUNT(*) AS companies, SUM(employees) AS employees FROM companies",
        )
        .load()
        .to_string(index=False)
    )
    print("\n== dolt log")
    log = dolt(
        "sql",
        "-q",
        "SELECT LEFT(commit_hash, 8) AS commit_hash, committer, "
        "REPLACE(message, '\\n', ' | ') AS message FROM dolt_log",
        cwd=database,
    )
    print(log.strip())
    print("\n== what the last save changed (dolt_diff)")
    print(
        dolt(
            "sql",
            "-q",
            "SELECT diff_type, from_id, to_id, from_employees, to_employees, to_name "
            "FROM dolt_diff('main~1', 'main', 'companies') ORDER BY to_id",
            cwd=database,
        ).strip()
    )


if __name__ == "__main__":
    main()
