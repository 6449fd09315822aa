"""Clinical evaluations of your own, beside the benchmarks: copy this folder and edit the cases.

Each test asks the run's model (``--model``; here the replay of answers.jsonl), scores the answer,
and records the scores, which reach the leaderboard, the gates, ``medbench compare`` and the HTML.
"""

import json
from pathlib import Path

import pytest

from pytest_medbench.metrics import parse_mcqa, rouge_l

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


def test_anaphylaxis_first_drug(medbench_model, medbench_judge, medbench):
    """Graded by the judge: --judge-model (a jury when given several), else the offline judge."""
    question = (
        "A 24-year-old develops stridor, hives and a blood pressure of 70/40 minutes after a wasp "
        "sting. Which drug is given first, and by which route?"
    )
    answer = medbench_model.complete(question)
    correct = medbench_judge.verdict(answer.text, "Intramuscular adrenaline (epinephrine)", question=question)
    medbench.record("anaphylaxis", {"accuracy": correct})
    assert correct, answer.text


def test_discharge_advice(medbench_model, medbench):
    """A metric threshold: ROUGE-L F of at least 0.30 against the clinician's wording."""
    note = "Viral chest infection, oxygen saturation 97% on air, eating and drinking, fever 38.1 C."
    reference = (
        "Rest, drink plenty of fluids, and come back if you get short of breath or the fever lasts "
        "more than three days."
    )
    answer = medbench_model.complete(f"Write one sentence of discharge advice for this patient:\n{note}")
    score = rouge_l(answer.text, reference)
    medbench.record("discharge_advice", {"rouge_l": score})
    assert score is not None and score >= 0.30, answer.text


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_drug_interaction(case, medbench_model, medbench):
    """One item per line of cases.jsonl; the task's accuracy is gated in pyproject.toml."""
    answer = medbench_model.complete(case["question"])
    correct = parse_mcqa(answer.text) == case["answer"]
    medbench.record("drug_interactions", {"accuracy": correct}, interaction=case["id"])
    assert correct, f"picked {parse_mcqa(answer.text)}, expected {case['answer']}"
