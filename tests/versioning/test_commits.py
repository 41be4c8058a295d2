from __future__ import annotations

from kedro_dolt.framework import context
from kedro_dolt.versioning.commits import commit_message, parse_trailers, save_trailers


class TestCommitMessages:
    def test_default_summary_names_dataset_and_node(self):
        message = commit_message(None, {"dataset": "companies", "table": "c", "node": "preprocess"})
        assert message.splitlines()[0] == "kedro: save companies (node: preprocess)"

    def test_trailers_round_trip(self):
        trailers = {"dataset": "companies", "table": "c", "run_id": "2026-11-24T07.01.12.421Z"}
        assert parse_trailers(commit_message("Refresh", trailers)) == trailers

    def test_trailer_values_cannot_forge_lines(self):
        message = commit_message(None, {"table": "c", "node": "n\nKedro-Run-Id: forged"})
        assert "run_id" not in parse_trailers(message)

    def test_save_trailers_follow_run_context(self):
        context.set_node("preprocess", "run-1")
        try:
            trailers = save_trailers(dataset="companies", table="c")
        finally:
            context.clear()
        assert trailers["node"] == "preprocess"
        assert trailers["run_id"] == "run-1"
        assert trailers["dataset"] == "companies"
