"""MedR-Bench output parsing on hand-written outputs and on the paper's released model outputs."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO, SHARED_DATA, needs_shared
from pytest_medbench.data.medr import load_medr
from pytest_medbench.parsing.medr import MAX_STEPS, parse_answer_output, split_thinking, visible_text
from pytest_medbench.parsing.verdict import loads_lenient, parse_items, parse_verdict

RELEASED = (
    SHARED_DATA / "medrbench" / "released-outputs" / "oracle_diagnosis_o3-mini_deepseek-r1_demo_100.json"
)


def test_fences_typo_header_and_step_tags():
    text = "```\n### Resoning:\n<step 1> Fever.\n<step 2> Murmur.\n\n### Answer:\nEndocarditis\n```"
    parsed = parse_answer_output(text)
    assert parsed.answer == "Endocarditis"
    assert parsed.steps == ("Fever.", "Murmur.")


def test_bold_step_headings_thinking_and_chatter():
    text = (
        "<think>hmm, maybe endocarditis</think>Sure! Here it is.\n**Reasoning:**\n**Step 1** Fever.\n"
        "**Step 2** Murmur.\n**Answer:** Infective endocarditis"
    )
    parsed = parse_answer_output(text)
    assert parsed.answer == "Infective endocarditis"
    assert parsed.steps == ("Fever.", "Murmur.")
    assert parsed.thinking == "hmm, maybe endocarditis"


def test_at_most_ten_steps_are_kept():
    steps = "\n".join(f"<step {n}> finding {n}" for n in range(1, 15))
    parsed = parse_answer_output(f"### Reasoning:\n{steps}\n### Answer:\nX")
    assert len(parsed.steps) == MAX_STEPS and parsed.steps[-1] == "finding 10"


def test_missing_answer_is_none_not_a_crash():
    assert parse_answer_output("I am not sure what this is.").answer is None


def test_exam_items_are_a_list_of_objects_or_nothing():
    cbc = {"type": "Lab", "test_name": "CBC", "info_required": "anaemia"}
    # the doc's normalisations (6.3): a lone object is a list of one; "info_requried" is read as meant
    assert parse_items('{"type": "Lab", "test_name": "CBC", "info_requried": "anaemia"}') == [cbc]
    assert parse_items(f"```json\n[{json.dumps(cbc)},]\n```") == [cbc]
    assert parse_items("[]") == []
    # a list with anything but objects in it is no structuring: no entry is silently dropped
    assert parse_items(f'[{json.dumps(cbc)}, "Chest x-ray", "Urine drug screen"]') is None
    assert parse_items('["CBC", "Chest x-ray"]') is None
    assert parse_items("[1, 2]") is None
    assert parse_items('[["CBC"]]') is None
    assert parse_items("Not required.") is None


@given(st.text(max_size=2000))
def test_parser_survives_any_text(text):
    parsed = parse_answer_output(text)
    assert len(parsed.steps) <= MAX_STEPS


@needs_shared(RELEASED)
@pytest.mark.parametrize("model", ["o3-mini", "deepseek-r1"])
def test_released_outputs_parse(model):
    outputs = json.loads(RELEASED.read_text(encoding="utf-8"))
    parsed = [parse_answer_output(entry[model]["content"]) for entry in outputs.values()]
    with_answer = sum(p.answer is not None for p in parsed)
    with_steps = sum(len(p.steps) > 0 for p in parsed)
    assert len(parsed) == 100
    assert with_answer >= 99 and with_steps >= 95, (with_answer, with_steps)


@needs_shared(SHARED_DATA / "medrbench")
def test_mirror_cases_load_and_split_at_the_first_ancillary_line():
    cases, errors = load_medr(SHARED_DATA)
    assert errors == []
    diagnosis = [case for case in cases if case.kind == "diagnosis"]
    assert len(diagnosis) == 100 and len(cases) == 200
    assert sum(case.rare for case in diagnosis) == 65
    for case in diagnosis:
        before, ancillary = case.split_ancillary()
        assert "Ancillary Tests" in ancillary.split("\n")[0] and "Ancillary Tests" not in before


def test_one_think_stripper_serves_answers_and_judge_replies():
    # closed, upper-case and unclosed (running to the end) blocks, as split_thinking reads them
    assert split_thinking("<THINK>Wrong?</THINK>\nCorrect") == ("Correct", "Wrong?")
    assert visible_text("  Correct <think>but maybe Wrong") == "Correct"
    assert parse_verdict("<THINK>Wrong?</THINK>\nCorrect", ("Correct", "Wrong")) == "Correct"
    assert parse_verdict("Correct <think>but maybe Wrong", ("Correct", "Wrong")) == "Correct"
    assert loads_lenient('<think>{"no": 1}</think>[1]') == [1]
    # and it is the package's only one: no other module compiles a <think> pattern of its own
    compiled = re.compile(r"re\.compile\(\s*r?[\"']<think>")
    package = REPO / "pytest_medbench"
    owners = sorted(
        str(path.relative_to(package)) for path in package.rglob("*.py") if compiled.search(path.read_text())
    )
    assert owners == ["parsing/medr.py"]
