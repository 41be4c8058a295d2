"""``--runner-params`` as Kedro's CLI passes them: strings picking the mode and the options."""

from __future__ import annotations

import re

import pytest
from kedro.runner import ParallelRunner, SequentialRunner, ThreadRunner

from kedro_dolt import IncrementalRunner
from kedro_dolt.framework.incremental import IncrementalParallelRunner, IncrementalThreadRunner


def test_the_mode_picks_kedros_runner():
    assert isinstance(IncrementalRunner(), SequentialRunner)
    thread = IncrementalRunner(mode="thread", max_workers="3")
    assert isinstance(thread, IncrementalThreadRunner) and isinstance(thread, ThreadRunner)
    parallel = IncrementalRunner(mode="parallel", max_workers="2")
    # Kedro's session builds the shared-memory catalog only for a ParallelRunner.
    assert isinstance(parallel, IncrementalParallelRunner) and isinstance(parallel, ParallelRunner)


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("True", True), (False, False)])
def test_restore_takes_cli_strings_and_bools(value, expected):
    assert IncrementalRunner(restore=value)._restore is expected
    assert IncrementalRunner(mode="thread", restore=value)._restore is expected


def test_a_bad_mode_or_flag_says_what_to_write():
    with pytest.raises(ValueError, match=re.escape("mode=sequential|thread|parallel")):
        IncrementalRunner(mode="fast")
    with pytest.raises(ValueError, match="restore=false"):
        IncrementalRunner(restore="maybe")
