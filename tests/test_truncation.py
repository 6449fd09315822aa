"""An answer cut at the token limit (finish_reason "length") is scored as given, and marked: in its
record and sample, in its task's `truncated` count, and in the HTML page."""

from __future__ import annotations

import json

from openai_server import OpenAIServer, Reply

from conftest import FIXTURES
from pytest_medbench.data.medr import load_medr

CASES = [case for case in load_medr(FIXTURES)[0] if case.kind == "diagnosis"]
CUT = CASES[0]  # its answer stops at the token limit, the others stop normally


def doctor(request: dict, number: int) -> Reply:
    case = next(case for case in CASES if case.summary.strip() in request["messages"][1]["content"])
    answer = f"### Reasoning:\n<step 1> thinking\n### Answer:\n{case.reference}"
    return Reply(content=answer, finish_reason="length" if case is CUT else "stop")


def test_truncated_answers_are_scored_as_given_and_marked(run_suites, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    samples, page = tmp_path / "samples.jsonl", tmp_path / "board.html"
    with OpenAIServer(doctor) as server:
        _, board = run_suites(
            "-k",
            "oracle_diagnosis",
            "--model=openai/doctor",
            f"--api-base={server.api_base}",
            f"--medbench-samples={samples}",
            f"--medbench-html={page}",
        )
    task = next(task for task in board["tasks"] if task["task"] == "oracle_diagnosis")
    assert task["truncated"] == 1 and task["passed"] == len(CASES)  # the cut answer still counts
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    marks = {line["id"]: (line["finish_reason"], line["truncated"]) for line in lines}
    assert marks == {case.case_id: ("length", True) if case is CUT else ("stop", False) for case in CASES}
    assert "1 truncated" in page.read_text()
    assert all(entry["truncated"] == 0 for entry in board["tasks"] if entry["task"] != "oracle_diagnosis")
