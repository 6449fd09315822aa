"""A jury of judges on 127.0.0.1: majority verdicts (a tie is incorrect), agreement per judged metric
with hand-computed percent agreement and kappa, and the kappas against a published example."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from openai_server import OpenAIServer, Reply

from conftest import FIXTURES
from pytest_medbench.data.medr import load_medr
from pytest_medbench.options import split_judge
from pytest_medbench.report.agreement import cohen_kappa, fleiss_kappa

CASES = [case for case in load_medr(FIXTURES)[0] if case.kind == "diagnosis"]
ORDER = {case.reference: number for number, case in enumerate(CASES)}
# Each judge's diagnosis verdict for the four fixture cases, in file order (C = Correct, W = Wrong).
VERDICTS = {"a": "CCCW", "b": "CWWW", "c": "CCWC"}


def scripted_judge(verdict: Callable[[dict, str], str]) -> Callable[[dict, int], Reply]:
    """A judge that gives each diagnosis ``verdict(request, prompt)`` and a plain answer to every
    reasoning step (the step split, keywords, labels, factuality, hits)."""

    def reply(request: dict, number: int) -> Reply:
        prompt = request["messages"][1]["content"]
        if "Predicted diagnosis" in prompt:
            return Reply(content=verdict(request, prompt))
        if "<Step k>" in prompt:
            return Reply(content="<Step 1> the reference")
        if "search keywords" in prompt:
            return Reply(content="keywords")
        if "Citation, Repetition, Reasoning or Redundancy" in prompt:
            return Reply(content="Reasoning")
        if "medically correct" in prompt:
            return Reply(content='{"judgment": "Correct", "keywords_to_search": null}')
        return Reply(content="Yes")

    return reply


def _verdict_by_judge(request: dict, prompt: str) -> str:
    gold = prompt.split("Reference diagnosis: ", 1)[1].split("\n", 1)[0]
    return "Correct" if VERDICTS[request["model"]][ORDER[gold]] == "C" else "Wrong"


jury_server = scripted_judge(_verdict_by_judge)


def run_jury(run_suites, judges: str, *extra: str) -> dict:
    with OpenAIServer(jury_server) as server:
        options = [f"--judge-model=openai/{name}@{server.api_base}" for name in judges]
        result, board = run_suites("-k", "oracle_diagnosis", "--model=medbench/oracle", *options, *extra)
    assert board is not None, result.stdout.str()[-2000:]
    assert board["run"]["judge"]["judges"] == [
        {"model": f"openai/{name}", "api_base": server.api_base} for name in judges
    ]
    assert board["run"]["judge"]["temperature"] == 0.0
    return next(task for task in board["tasks"] if task["task"] == "oracle_diagnosis")


def test_three_judges_decide_by_majority_with_fleiss_kappa(run_suites, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    task = run_jury(run_suites, "abc", f"--medbench-html={tmp_path / 'board.html'}")
    # majorities per case: CCC, CWC, CWW, WWC -> correct, correct, wrong, wrong
    assert task["metrics"]["accuracy"]["value"] == 50.0
    # Fleiss by hand: rows [3,0] [2,1] [1,2] [1,2]; P = (1 + 1/3 * 3) / 4 = 0.5;
    # p = 7/12, 5/12; Pe = 74/144; kappa = (0.5 - 74/144) / (1 - 74/144) = -1/35
    agreement = task["judge_agreement"]["accuracy"]
    assert agreement == {
        "n": 4,
        "judges": 3,
        "percent_agreement": 25.0,
        "kappa": pytest.approx(-1 / 35, abs=1e-4),
        "kappa_kind": "fleiss",
    }
    page = (tmp_path / "board.html").read_text()
    assert "25% agree, fleiss \u03ba -0.03 (n 4)" in page and "openai/a, openai/b, openai/c" in page
    # every judge labels every step alike: full agreement, kappa undefined (all ratings in one class)
    assert task["judge_agreement"]["efficiency"]["percent_agreement"] == 100.0
    assert task["judge_agreement"]["efficiency"]["kappa"] is None


def test_two_judges_tie_is_incorrect_with_cohens_kappa(run_suites, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    task = run_jury(run_suites, "ab")
    # CC correct; CW and CW ties count as incorrect; WW wrong
    assert task["metrics"]["accuracy"]["value"] == 25.0
    # Cohen by hand: po = 2/4; pe = 3/4 * 1/4 + 1/4 * 3/4 = 0.375; kappa = 0.125 / 0.625 = 0.2
    agreement = task["judge_agreement"]["accuracy"]
    assert agreement == {"n": 4, "judges": 2, "percent_agreement": 50.0, "kappa": 0.2, "kappa_kind": "cohen"}


def test_kappas_match_published_examples():
    # Fleiss' kappa: the worked example of 10 subjects, 14 raters, 5 categories (Wikipedia,
    # "Fleiss' kappa"), whose published value is 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    # Cohen's kappa: Wikipedia's example (50 proposals: 20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no) = 0.4
    first = ["yes"] * 25 + ["no"] * 25
    second = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("openai/judge@http://127.0.0.1:8000/v1", ("openai/judge", "http://127.0.0.1:8000/v1")),
        ("vertex_ai/claude-3-sonnet@20240229", ("vertex_ai/claude-3-sonnet@20240229", None)),
        ("gpt-4o", ("gpt-4o", None)),
    ],
)
def test_model_at_api_base(text, expected):
    assert split_judge(text) == expected


@pytest.mark.parametrize("where", ["ini", "pyproject"])
def test_judge_models_as_a_list_in_the_ini(pytester, where):
    if where == "ini":
        pytester.makeini(
            "[pytest]\nmedbench_judge_model =\n    openai/a\n    openai/b@http://127.0.0.1:1/v1\n"
        )
    else:
        pytester.makepyprojecttoml(
            '[tool.pytest.ini_options]\nmedbench_judge_model = ["openai/a", "openai/b@http://127.0.0.1:1/v1"]\n'
        )
    pytester.makeconftest(
        "from pytest_medbench.options import Settings\n"
        "def pytest_configure(config):\n"
        "    s = Settings.from_config(config)\n"
        "    print('JUDGES', s.judge_models, s.judge_model, s.agent_model)\n"
    )
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--co", "-q")
    result.stdout.fnmatch_lines(["JUDGES ('openai/a', 'openai/b@http://127.0.0.1:1/v1') openai/a openai/a"])


def test_a_jury_of_one_model_at_two_urls_keeps_each_judges_answers_in_the_cache(run_suites, monkeypatch):
    """``--judge-model m@URL1 --judge-model m@URL2`` are two judges: with a cache file (run_suites
    keeps one), the second is asked, not given the first's verdicts from the cache."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with (
        OpenAIServer(scripted_judge(lambda request, prompt: "Correct")) as first,
        OpenAIServer(scripted_judge(lambda request, prompt: "Wrong")) as second,
    ):
        result, board = run_suites(
            "-k", "oracle_diagnosis", "--model=medbench/oracle",
            f"--judge-model=openai/examiner@{first.api_base}",
            f"--judge-model=openai/examiner@{second.api_base}",
        )  # fmt: skip
    assert board is not None, result.stdout.str()[-2000:]
    assert len(second.requests) == len(first.requests) > 0
    task = next(task for task in board["tasks"] if task["task"] == "oracle_diagnosis")
    # every case: Correct from one judge, Wrong from the other, a tie, which counts as incorrect
    assert task["metrics"]["accuracy"]["value"] == 0.0
    assert task["judge_agreement"]["accuracy"]["percent_agreement"] == 0.0
