from __future__ import annotations

import pytest
from kedro.io.core import DatasetError

from kedro_dolt.naming import (
    quote_identifier,
    quote_string,
    validate_branch,
    validate_ref,
    validate_table,
)


class TestValidation:
    @pytest.mark.parametrize("name", ["main", "exp/run-1", "feature_2.0", "v1"])
    def test_good_branches(self, name):
        assert validate_branch(name) == name

    @pytest.mark.parametrize(
        "name", ["", "-f", "a b", "a..b", "a;b", "x'y", "ends.lock", "a//b", "HEAD~1", "a`b", "é"]
    )
    def test_bad_branches(self, name):
        with pytest.raises(DatasetError, match="Invalid branch"):
            validate_branch(name)

    @pytest.mark.parametrize(
        "ref", ["main", "HEAD~2", "main^", "v1.0", "1a2b3c4d5e6f7g8h9i0jklmnopqrstuv"]
    )
    def test_good_refs(self, ref):
        assert validate_ref(ref) == ref

    @pytest.mark.parametrize("ref", ["", "main' --", "a b", "$(reboot)", "--all"])
    def test_bad_refs(self, ref):
        with pytest.raises(DatasetError, match="Invalid ref"):
            validate_ref(ref)

    @pytest.mark.parametrize("name", ["companies", "my table", "t-1", "T_2"])
    def test_good_tables(self, name):
        assert validate_table(name) == name

    @pytest.mark.parametrize("name", ["", "a`b", "dolt_log", "x" * 65, " lead", "a;b", "tab\tle"])
    def test_bad_tables(self, name):
        with pytest.raises(DatasetError, match="Invalid table"):
            validate_table(name)


class TestQuoting:
    def test_identifier(self):
        assert quote_identifier("a`b") == "`a``b`"

    def test_string(self):
        assert quote_string("it's \\ fine") == "'it''s \\\\ fine'"

    def test_string_rejects_nul(self):
        with pytest.raises(DatasetError):
            quote_string("a\x00b")
