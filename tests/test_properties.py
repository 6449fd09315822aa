"""Every parser and metric survives arbitrary text and stays within its bounds (hypothesis).

The default profile runs 100 examples per property; ``HYPOTHESIS_PROFILE=nightly`` runs 2,000.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_medbench.data.medr import ancillary_entries
from pytest_medbench.judge.offline import (
    OfflineAgent,
    OfflineJudge,
    normalise,
    offline_verdict,
    request_items,
)
from pytest_medbench.parsing.mcqa import extract_letters, extract_yes_no_maybe
from pytest_medbench.parsing.medr import MAX_STEPS, parse_exam_turn, split_steps
from pytest_medbench.parsing.verdict import loads_lenient, parse_items
from pytest_medbench.report.aggregate import aggregate
from pytest_medbench.report.records import ItemRecord

TEXT = st.text(max_size=500)
SECTIONED = st.lists(
    st.sampled_from(
        [
            "### Chain of Thought:",
            "### Conclusion:",
            "### Additional Information Required:",
            "<step 1>",
            "**Step 2**",
            "```",
            "<think>",
            "</think>",
            "Not required.",
            "\n",
            "\n\n",
            "1. CBC",
        ]
    )
    | TEXT,
    max_size=12,
).map("".join)


@given(SECTIONED)
def test_exam_turn_parser(text):
    turn = parse_exam_turn(text)
    assert len(turn.steps) <= MAX_STEPS
    assert turn.asks_for_more in (True, False)
    assert not turn.asks_for_more or "not required" not in (turn.request or "").lower()


@given(TEXT)
def test_step_splitter(text):
    assert all(step.strip() for step in split_steps(text))


@given(TEXT)
def test_mcqa_extraction(text):
    assert extract_letters(text) <= frozenset("ABCDE")
    assert extract_yes_no_maybe(text) in (None, "yes", "no", "maybe")


@given(TEXT)
def test_json_readers(text):
    items = parse_items(text)
    assert items is None or all(isinstance(item, dict) for item in items)
    loads_lenient(text)


@given(TEXT, TEXT)
def test_offline_judge_and_agent(prediction, gold):
    assert offline_verdict(prediction, gold) in (True, False)
    assert offline_verdict(gold, gold) == bool(normalise(gold))  # the reference itself, when it says anything
    assert not offline_verdict(f"not {gold}", gold)  # never a negation
    assert not offline_verdict(f"{gold}, pneumonia", gold)  # never a list holding the reference
    scores = OfflineJudge().exam_scores(prediction, gold)
    assert 0.0 <= scores["precision"] <= 1.0
    assert scores["recall"] is None or 0.0 <= scores["recall"] <= 1.0
    assert isinstance(OfflineAgent().reply(prediction, "", gold), str)
    assert all(item for item in request_items(prediction))
    assert all(name and line for name, line in ancillary_entries(gold))


RECORDS = st.lists(
    st.builds(
        lambda task, n, value, error: ItemRecord(
            "medr",
            task,
            "diagnosis",
            str(n),
            scores={"accuracy": value, "efficiency": None},
            passed=bool(value) and not error,  # an errored item never passes
            error={"kind": "server", "message": "x"} if error else None,
            tags={"rare": n % 2 == 0, "body_systems": ["brain"]},
        ),
        st.sampled_from(["oracle_diagnosis", "diagnosis_1turn"]),
        st.integers(0, 10_000),
        st.sampled_from([0.0, 1.0]),
        st.booleans(),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda r: (r.task, r.id),
)


@given(RECORDS)
def test_aggregation_bounds(records):
    board = aggregate(records)
    for section in ("tasks", "categories", "benchmarks"):
        for entry in board[section]:
            assert entry["passed"] + entry["errors"] <= entry["n"]
            for metric in entry["metrics"].values():
                low, high = metric["ci95"]
                assert 0.0 <= low <= metric["value"] + 1e-9 and metric["value"] <= high + 1e-9 <= 100.0 + 1e-9
    assert sum(task["n"] for task in board["tasks"]) == len(records)
