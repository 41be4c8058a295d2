"""Incremental runs: skip every node whose result is already in Dolt (README, "Incremental
runs"). ``runner`` runs, ``plan`` explains without running, ``decide`` holds the rules."""

from .plan import plan
from .runner import IncrementalParallelRunner, IncrementalRunner, IncrementalThreadRunner

__all__ = ["IncrementalParallelRunner", "IncrementalRunner", "IncrementalThreadRunner", "plan"]
