"""What the ``medbench`` fixture gives a test: ``evaluate(item)`` runs one benchmark item and fails
the test with the item's reason; ``record(...)`` puts a test of your own in the leaderboard.

Imported on the first test that asks for the fixture, not at plugin load.
"""

from __future__ import annotations

from typing import Any

import pytest

from .models.secrets import without_userinfo
from .report.records import ItemRecord
from .run.scheduler import RECORD_KEY, ItemFailed

# model errors after which no later item can get an answer: the run stops (exit 2) rather than fail them
# all. A connection error stops it only when the host is unreachable, not when a connection dropped.
STOPS_THE_RUN = ("auth", "quota")
UNREACHABLE = (
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname",
    "No route to host",
)


class Evaluator:
    """What the ``medbench`` fixture gives a test: ``evaluate(item)`` -> the item's record, and
    ``record(task, scores, ...)`` for a test of your own (see ``custom.py``)."""

    def __init__(self, run: Any, node: pytest.Item) -> None:
        self._run, self._node = run, node

    def __repr__(self) -> str:
        return f"<medbench evaluator for {self._run.model.name}>"

    def evaluate(self, item: Any) -> ItemRecord:
        try:
            return self._run.evaluate(item, self._node)
        except ItemFailed as exc:
            message = str(exc)  # failed below, outside this block, so pytest shows it once, unchained
        error = self._node.stash[RECORD_KEY].error or {}
        unreachable = error.get("kind") == "connection" and any(m in error["message"] for m in UNREACHABLE)
        if error.get("kind") in STOPS_THE_RUN or unreachable:
            self._node.session.shouldstop = self._stop_reason(error["kind"])
        pytest.fail(message, pytrace=False)

    def _stop_reason(self, kind: str) -> str:
        """Why the run stops after this item: no later item could get an answer either."""
        where = f" at {without_userinfo(self._run.model.api_base)}" if self._run.model.api_base else ""
        what = "cannot be reached" if kind == "connection" else f"refused the calls ({kind})"
        return f"medbench: the model {self._run.model.name}{where} {what}; the other items were not run"

    def record(
        self,
        task: str,
        scores: dict[str, Any],
        passed: bool | None = None,
        benchmark: str = "custom",
        **tags: Any,
    ) -> ItemRecord:
        """Put this test's ``scores`` (0-1 each) in the leaderboard as one item of ``benchmark.task``;
        ``passed`` None: the test's own outcome."""
        from .custom import own_test, record_scores  # at call time, as the medbench_model fixture does

        return record_scores(own_test(self._run, self._node), task, scores, passed, benchmark, tags)
