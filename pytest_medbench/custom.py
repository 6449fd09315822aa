"""Tests of a user's own: the run's model and judge as fixtures, and ``medbench.record`` to put a
test's scores in the leaderboard beside the benchmarks.

Every call a test makes through ``medbench_model`` or ``medbench_judge`` goes through the run's
clients (cache, retries, rate limits) and is metered into one record per test; ``record`` names
that record's task and scores and hands it to the reporter like any benchmark item's, keyed by the
test's node id, so a run under ``-n`` gives the same leaderboard as one process.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from .data.declared import DEFAULT_BENCHMARK, RESERVED_BENCHMARKS
from .models.errors import ModelCallError
from .options import shown_judge
from .report.gates import COUNTS
from .report.records import ItemRecord
from .run.scheduler import RECORD_KEY

_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # a segment of a gate path: custom.<task>.<metric>


@dataclass(frozen=True)
class Answer:
    """The model's answer to one ``medbench_model.complete`` call."""

    text: str
    finish_reason: str | None  # "length": cut at --medbench-max-tokens
    usage: dict[str, Any] = field(default_factory=dict)  # prompt/completion tokens, cost_usd, cached


class OwnTest:
    """One test's record and services, shared by its ``medbench``, ``medbench_model`` and
    ``medbench_judge`` fixtures (made on first use)."""

    def __init__(self, run: Any, node: pytest.Item) -> None:
        self.run, self.node = run, node
        self.record = ItemRecord(DEFAULT_BENCHMARK, "", "", node.nodeid, node.nodeid)
        self.recorded = False
        self.turns: dict[tuple[str, str], int] = {}
        self._services: Any = None

    @property
    def services(self) -> Any:
        if self._services is None:
            self._services = self.run.services(self.record, epoch=0)
        return self._services


OWN_TEST_KEY = pytest.StashKey[OwnTest]()


def own_test(run: Any, node: pytest.Item) -> OwnTest:
    """The test's OwnTest, made once per test item."""
    if OWN_TEST_KEY not in node.stash:
        node.stash[OWN_TEST_KEY] = OwnTest(run, node)
    return node.stash[OWN_TEST_KEY]


class ModelFixture:
    """``medbench_model``: the evaluated model as the run configures it."""

    def __init__(self, test: OwnTest) -> None:
        self._test = test

    def __repr__(self) -> str:
        return f"<medbench_model {self._test.run.model.name}>"

    def complete(
        self,
        messages_or_prompt: str | list[dict[str, str]],
        *,
        task: str | None = None,
        id: str | None = None,
        reference: str = "",
    ) -> Answer:
        """The model's answer to a prompt (one user message) or a list of chat messages.

        ``task`` and ``id`` name the call for the built-in ``replay:`` model (default: the test
        function's name and its parameter id, "" when not parametrized); ``reference`` is what
        ``medbench/oracle`` answers. A call that fails after the retries fails the test.
        """
        if isinstance(messages_or_prompt, str):
            messages = [{"role": "user", "content": messages_or_prompt}]
        else:
            messages = list(messages_or_prompt)
        node = self._test.node
        callspec = getattr(node, "callspec", None)
        default_id = getattr(callspec, "id", "")
        key = (task or getattr(node, "originalname", node.name), default_id if id is None else id)
        turn = self._test.turns.get(key, 0)
        self._test.turns[key] = turn + 1
        context = {
            "benchmark": DEFAULT_BENCHMARK,
            "task": key[0],
            "id": key[1],
            "turn": turn,
            "input": messages[-1]["content"] if messages else "",
            "reference": reference,
            "majority": "",
        }
        try:
            completion = self._test.services.ask_model(messages, context)
        except ModelCallError as exc:
            failure = f"medbench_model {self._test.run.model.name}: {exc}"
        else:
            failure = None
        if failure is not None:  # outside the except: the report shows the cause once, not a chain
            pytest.fail(failure, pytrace=False)
        self._test.record.output = completion.text  # the samples file and the empty-answer count
        usage = {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": completion.cost_usd,
            "cached": completion.cached,
        }
        return Answer(completion.text, completion.finish_reason, usage)


class JudgeFixture:
    """``medbench_judge``: the run's judge (``--judge-model``), its jury, or the offline judge."""

    def __init__(self, test: OwnTest) -> None:
        self._test = test

    def __repr__(self) -> str:
        judges = ", ".join(map(shown_judge, self._test.run.settings.judge_models)) or "offline judge"
        return f"<medbench_judge {judges}>"

    def verdict(
        self, answer: str, reference: str, question: str | None = None, rubric: str | None = None
    ) -> bool:
        """Whether ``answer`` agrees with ``reference`` (and meets ``rubric``). An LLM judge's reply
        must be exactly Correct or Wrong (one reminder, then the test fails: never a guess); a jury
        decides by strict majority; the offline judge needs the normalised reference itself."""
        try:
            return bool(self._test.services.judge.verdict(answer, reference, question, rubric))
        except ModelCallError as exc:
            failure = f"medbench_judge: {exc}"
        pytest.fail(failure, pytrace=False)


def record_scores(
    test: OwnTest, task: str, scores: dict[str, Any], passed: bool | None, benchmark: str, tags: dict
) -> ItemRecord:
    """Fill the test's record and hand it to the reporter; a bad argument raises ValueError at once."""
    where = f"medbench.record in {test.node.nodeid}"
    if test.recorded:
        raise ValueError(f"{where}: called twice; one test records one item")
    for what, name in (("task", task), ("benchmark", benchmark)):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: {what} {name!r} must be letters, digits and underscores")
    if benchmark in RESERVED_BENCHMARKS:
        raise ValueError(f"{where}: benchmark {benchmark!r} is the published benchmark's; use your own name")
    category = tags.pop("category", task)
    if not isinstance(category, str) or not _NAME.match(category):
        raise ValueError(f"{where}: category {category!r} must be letters, digits and underscores")
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"{where}: scores must be a non-empty dict of metric name -> value from 0 to 1")
    checked: dict[str, float | None] = {}
    for name, value in scores.items():
        if not isinstance(name, str) or not _NAME.match(name) or name in COUNTS:
            raise ValueError(
                f"{where}: metric name {name!r} must be letters, digits and underscores, "
                f"and not one of {', '.join(COUNTS)}"
            )
        if value is not None and (
            not isinstance(value, (bool, int, float)) or math.isnan(value) or not 0 <= value <= 1
        ):
            raise ValueError(f"{where}: score {name}={value!r} must be a number from 0 to 1 (or None)")
        checked[name] = None if value is None else float(value)
    try:
        json.dumps(tags)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: tags must be JSON values ({exc})") from None
    record = test.record
    record.benchmark, record.task, record.category = benchmark, task, category
    record.scores, record.tags = checked, tags
    # None: the test's own outcome decides, when its report is made (plugin.pytest_runtest_makereport)
    record.passed = None if passed is None else bool(passed)
    test.recorded = True
    test.node.stash[RECORD_KEY] = record
    return record
