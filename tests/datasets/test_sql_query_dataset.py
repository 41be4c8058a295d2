from __future__ import annotations

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from kedro_dolt import DoltSQLQueryDataset, DoltTableDataset
from tests.conftest import dolt, state


@pytest.fixture
def saved(repo, companies):
    dataset = DoltTableDataset(
        database=str(repo), table="companies", save_args={"primary_key": "id"}
    )
    dataset.save(companies)
    dolt(repo, "tag", "v1")
    dataset.save(companies.assign(employees=[1, 2, None]).astype({"employees": "Int64"}))
    return dataset


class TestDoltSQLQueryDataset:
    def test_load_returns_typed_frame(self, repo, saved):
        result = DoltSQLQueryDataset(
            database=str(repo),
            sql="SELECT id, name, employees, employees / 2 AS half, created_at "
            "FROM companies, (SELECT CAST('2026-11-24 07:00:00' AS DATETIME) AS created_at) AS t "
            "ORDER BY id",
        ).load()
        assert result["id"].dtype == "int64"
        assert str(result["employees"].dtype) == "Int64"
        assert result["employees"].tolist()[:2] == [1, 2]
        assert result["employees"].isna().tolist() == [False, False, True]
        assert result["half"].dtype == "float64"  # DECIMAL -> float64, as pandas.read_sql
        assert result["name"].tolist() == ["Acme", "Globex", "Initech"]
        assert result["created_at"].dtype == "datetime64[ns]"

    def test_ref_reads_older_version(self, repo, saved, companies):
        old = DoltSQLQueryDataset(
            database=str(repo), sql="SELECT SUM(employees) AS n FROM companies", ref="v1"
        )
        assert old.load()["n"].iloc[0] == companies["employees"].sum()
        previous = DoltSQLQueryDataset(
            database=str(repo), sql="SELECT COUNT(*) AS n FROM companies", ref="HEAD~1"
        )
        assert previous.load()["n"].iloc[0] == 3

    def test_reads_committed_data_only(self, repo, saved):
        dolt(repo, "sql", "-q", "DELETE FROM companies")  # uncommitted
        count = DoltSQLQueryDataset(database=str(repo), sql="SELECT COUNT(*) AS n FROM companies")
        assert count.load()["n"].iloc[0] == 3

    def test_writing_sql_is_refused_and_changes_nothing(self, repo, saved):
        before = state(repo)
        with pytest.raises(DatasetError, match="read-only"):
            DoltSQLQueryDataset(database=str(repo), sql="DELETE FROM companies").load()
        assert state(repo) == before

    def test_save_raises(self, repo):
        with pytest.raises(DatasetError, match="read-only"):
            DoltSQLQueryDataset(database=str(repo), sql="SELECT 1").save(pd.DataFrame())

    def test_bad_sql_reports_dolt_message(self, repo, saved):
        with pytest.raises(DatasetError, match=r"(?s)Query failed.*Dolt said:.*nope"):
            DoltSQLQueryDataset(database=str(repo), sql="SELECT nope FROM companies").load()

    def test_unknown_ref(self, repo, saved):
        with pytest.raises(DatasetError, match=r"(?s)at 'gone'.*Dolt said"):
            DoltSQLQueryDataset(database=str(repo), sql="SELECT 1", ref="gone").load()

    @pytest.mark.parametrize("sql", ["", "   "])
    def test_empty_sql(self, repo, sql):
        with pytest.raises(DatasetError, match="non-empty 'sql'"):
            DoltSQLQueryDataset(database=str(repo), sql=sql)

    def test_describe(self, repo):
        dataset = DoltSQLQueryDataset(database=str(repo), sql="SELECT 1", ref="v1")
        assert dataset._describe() == {
            "filepath": f"{repo} | query at v1",
            "database": str(repo),
            "sql": "SELECT 1",
            "ref": "v1",
        }
