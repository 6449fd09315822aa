"""Your own evaluations: declared task files, the medbench_model / medbench_judge fixtures,
medbench.record, the public scoring functions, and the examples/ suite (run here, so CI runs it)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply

from conftest import FIXTURES, REPO, stable
from pytest_medbench import metrics
from pytest_medbench.cli import main as medbench_cli
from pytest_medbench.data.declared import DeclarationError, Declarations
from pytest_medbench.data.meds import load_meds, meds_task_of
from pytest_medbench.data.meds_tasks import TaskSpec
from pytest_medbench.metrics.meds import score_meds

EXAMPLES = REPO / "examples"
TASK = {"Definition": ["Answer."], "Instances": [{"id": "a", "input": "Q?", "output": "emergent"}]}


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _no_declarations(tmp_path: Path) -> Declarations:
    return Declarations({}, tmp_path / "pyproject.toml")


# -- declared task files --------------------------------------------------------------------------


def test_undeclared_file_is_a_data_error_that_says_how_to_declare(tmp_path):
    custom = _write(tmp_path / "custom" / "sepsis_triage.json", TASK)
    prefixed = _write(tmp_path / "meds-bench" / "task900_sepsis_triage.json", TASK)
    unprefixed = _write(tmp_path / "meds-bench" / "sepsis_triage_copy.json", TASK)
    tasks, errors = load_meds(tmp_path, _no_declarations(tmp_path))
    assert tasks == []
    expected = sorted(path.resolve() for path in (custom, prefixed, unprefixed))
    assert sorted(error.path.resolve() for error in errors) == expected
    message = next(str(e) for e in errors if e.path.name == "task900_sepsis_triage.json")
    assert "[tool.medbench.tasks.task900_sepsis_triage]" in message
    assert "task900_sepsis_triage.medbench.toml" in message


def test_pyproject_and_sidecar_declarations_make_custom_tasks(tmp_path):
    _write(tmp_path / "meds-bench" / "task900_sepsis_triage.json", TASK)
    _write(tmp_path / "custom" / "triage.json", TASK)
    sidecar = 'scorer = "label"\nlabels = ["emergent", "routine"]\n'
    _write(tmp_path / "custom" / "triage.medbench.toml", sidecar)
    table = {"task900": {"scorer": "mcqa", "category": "triage", "benchmark": "ward"}}
    declarations = Declarations(table, tmp_path / "pyproject.toml")
    tasks, errors = load_meds(tmp_path, declarations)
    assert errors == []
    by_id = {task.task_id: task.spec for task in tasks}
    assert by_id["task900"].benchmark == "ward" and by_id["task900"].category == "triage"
    assert by_id["triage"].benchmark == "custom" and by_id["triage"].labels == ("emergent", "routine")


def test_one_task_id_in_two_files_is_an_error(tmp_path):
    for folder in ("ward_a", "ward_b"):
        _write(tmp_path / "custom" / folder / "triage.json", TASK)
    declarations = Declarations({"triage": {"scorer": "label"}}, tmp_path / "pyproject.toml")
    tasks, errors = load_meds(tmp_path, declarations)
    # one error naming the task id (main's loader, since issue 20, keeps neither file; this branch the first)
    assert len(tasks) <= 1 and len(errors) == 1 and "task id triage" in errors[0].message


def test_tasks_dir_files_are_declared_tasks(tmp_path):
    _write(tmp_path / "own" / "handover.json", TASK)
    declarations = Declarations({"handover": {"scorer": "judge"}}, tmp_path / "pyproject.toml")
    tasks, errors = load_meds(tmp_path / "data", declarations, tmp_path / "own")
    assert [task.task_id for task in tasks] == ["handover"] and errors == []


MCQA = {
    "Definition": ["Answer with the letter."],
    "Instances": [{"id": "q", "input": "Which is one?\nOptions: A: 1\tB: 2", "output": "A: 1"}],
}


def test_a_declaration_for_the_file_stem_wins_over_a_task_id_prefix(tmp_path):
    """custom/task57_mine.json declared as task57_mine is that task, never MedS-Bench task57, and
    runs beside the real task57; so does a meds-bench/ file a sidecar declares."""
    mine = _write(tmp_path / "custom" / "task57_mine.json", TASK)
    _write(tmp_path / "meds-bench" / "MCQA" / "task57_medqa.json", MCQA)
    local = _write(tmp_path / "meds-bench" / "MCQA" / "task58_local.json", TASK)
    _write(tmp_path / "meds-bench" / "MCQA" / "task58_local.medbench.toml", 'scorer = "label"\n')
    declarations = Declarations({"task57_mine": {"scorer": "label"}}, tmp_path / "pyproject.toml")
    tasks, errors = load_meds(tmp_path, declarations)
    assert errors == []
    by_id = {task.task_id: task for task in tasks}
    assert sorted(by_id) == ["task57", "task57_mine", "task58_local"]
    assert (by_id["task57_mine"].spec.benchmark, by_id["task57_mine"].spec.scorer) == ("custom", "label")
    assert by_id["task57_mine"].path == mine.resolve() and by_id["task57"].spec.benchmark == "meds"
    assert by_id["task58_local"].spec.benchmark == "custom" and by_id["task58_local"].path == local
    assert meds_task_of(local, declarations) is None and meds_task_of(local) == "task58"


def test_an_undeclared_own_file_is_never_a_benchmark_task(tmp_path):
    """A custom/ file named like a MedS-Bench task is still an own task: undeclared, a data error."""
    copy = _write(tmp_path / "custom" / "task58_copy.json", MCQA)
    tasks, errors = load_meds(tmp_path, _no_declarations(tmp_path))
    assert tasks == [] and [error.path for error in errors] == [copy.resolve()]
    assert "[tool.medbench.tasks.task58_copy]" in errors[0].message


def test_a_declared_task57_file_runs_as_declared_beside_the_benchmark(pytester, run_suites, tmp_path):
    data = tmp_path / "data"
    _write(data / "custom" / "task57_mine.json", TASK)
    _write(data / "meds-bench" / "MCQA" / "task57_medqa.json", MCQA)
    pyproject = pytester.makepyprojecttoml(
        '[tool.medbench.tasks.task57_mine]\nscorer = "label"\ncategory = "mine"\n'
    )
    config = ["--rootdir", str(pytester.path), "-c", str(pyproject)]
    result, board = run_suites(*config, "--medbench-data", str(data), "--model", "medbench/oracle")
    assert result.ret == 0, result.stdout.str()
    tasks = {(task["benchmark"], task["task"]): task for task in board["tasks"]}
    assert set(tasks) == {("custom", "task57_mine"), ("meds", "task57")}
    assert tasks[("custom", "task57_mine")]["category"] == "mine"
    assert "task57" not in board["run"]["meds_tasks_absent"]


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"scorer": "rouge"}, "scorer 'rouge' is not one of mcqa, label"),
        ({"scorer": "mcqa", "colour": "red"}, "unknown key 'colour'"),
        ({"scorer": "mcqa", "pass_threshold": 0.5}, "pass_threshold applies to the generation"),
        ({"scorer": "generation", "pass_threshold": 30}, "must be a number from 0 to 1"),
        ({"scorer": "mcqa", "benchmark": "meds"}, "reserved"),
        ({"scorer": "ner", "labels": ["x"]}, "labels apply to the label and multilabel"),
        ({"scorer": "mcqa", "language": "de"}, "language 'de'"),
    ],
)
def test_bad_declaration_names_the_place_and_the_key(tmp_path, table, fragment):
    with pytest.raises(DeclarationError, match=r"tool\.medbench\.tasks\.sepsis") as raised:
        Declarations({"sepsis": table}, tmp_path / "pyproject.toml")
    assert fragment in str(raised.value)


def test_bad_sidecar_is_a_data_error_naming_the_sidecar(tmp_path):
    _write(tmp_path / "custom" / "triage.json", TASK)
    sidecar = _write(tmp_path / "custom" / "triage.medbench.toml", 'scorer = "guess"\n')
    tasks, errors = load_meds(tmp_path, _no_declarations(tmp_path))
    assert tasks == [] and errors[0].path == sidecar and "scorer 'guess'" in errors[0].message


def test_bad_pyproject_declaration_is_a_usage_error(pytester):
    pytester.makepyprojecttoml('[tool.medbench.tasks.sepsis]\nscorer = "rouge"\n')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pyproject.toml*[[]tool.medbench.tasks.sepsis[]]*scorer 'rouge'*"])


def test_generation_pass_threshold_decides_the_pass():
    # hand computation: "a b c d" vs "a b x y": LCS 2 of 4 tokens each, so P = R = F = 0.5
    low, high = (
        TaskSpec("own", "own", "generation", benchmark="custom", pass_threshold=t) for t in (0.4, 0.6)
    )
    assert score_meds(low, "a b c d", "a b x y").passed
    assert not score_meds(high, "a b c d", "a b x y").passed
    assert score_meds(high, "a b c d", "a b x y").scores["rouge_l"] == pytest.approx(0.5)


def test_declared_multilabel_uses_its_own_labels_in_official_mode():
    spec = TaskSpec("own", "own", "multilabel", benchmark="custom", labels=("pneumonia", "sepsis"))
    # with HoC's labels neither side has a label, which would count as an exact match
    score = score_meds(spec, "pneumonia", "pneumonia, sepsis", label_set=("pneumonia", "sepsis"))
    assert score.scores["exact_match"] == 0.0


def test_label_scorer_parses_the_label_on_both_sides():
    spec = TaskSpec("own", "triage", "label", benchmark="custom")
    labels = ("emergent", "urgent", "routine")
    assert score_meds(spec, "Urgent - review within the hour.", "urgent", label_set=labels).passed
    assert not score_meds(spec, "Emergently seen", "emergent", label_set=labels).passed  # whole words only


# -- public scoring functions --------------------------------------------------------------------


def test_public_scoring_functions():
    from pytest_medbench.metrics import overlap

    assert metrics.rouge_l is overlap.rouge_l and metrics.bleu_1 is overlap.bleu_1  # wrapped, not copied
    # hand: {aspirin, heparin} vs {aspirin, warfarin}: tp 1, fp 1, fn 1 -> P = R = F1 = 0.5
    assert metrics.entity_f1("Aspirin, heparin.", "aspirin, warfarin") == pytest.approx(0.5)
    assert metrics.entity_f1("There is no related entity.", "") == 1.0
    assert metrics.parse_mcqa("The right answer is B: Myopathy") == "B"
    assert metrics.parse_mcqa("no idea") is None
    assert metrics.parse_label("Not emergent; urgent.", ["urgent", "emergent"]) == "emergent"  # first said
    assert metrics.parse_label("routine", ["urgent"]) is None


# -- fixtures and medbench.record ----------------------------------------------------------------

OWN_TEST = """
import pytest

def test_shock(medbench_model, medbench_judge, medbench):
    answer = medbench_model.complete("First vasopressor in septic shock?", reference="Norepinephrine")
    correct = medbench_judge.verdict(answer.text, "Norepinephrine", question="First vasopressor?")
    medbench.record("shock", {"accuracy": correct})
    assert correct
"""


def test_fixtures_use_the_run_model_and_a_strict_llm_judge(pytester, tmp_path):
    replies = iter(["I think so", "Correct"])  # unparseable first: one reminder, then the verdict
    with OpenAIServer(lambda request, number: Reply(content=next(replies))) as judge:
        pytester.makepyfile(OWN_TEST)
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--model=medbench/oracle", "--medbench-no-cache",
            f"--judge-model=openai/judge@{judge.api_base}", f"--medbench-report={tmp_path / 'lb.json'}",
        )  # fmt: skip
    result.assert_outcomes(passed=1)
    fenced = judge.requests[0]["messages"][-1]["content"]
    assert "Norepinephrine" in fenced and "<<<ANSWER-" in fenced  # the oracle's answer, fenced
    assert len(judge.requests) == 2
    task = json.loads((tmp_path / "lb.json").read_text())["tasks"][0]
    assert (task["benchmark"], task["task"]) == ("custom", "shock")
    assert task["metrics"]["accuracy"]["value"] == 100.0
    assert task["judge_tokens"]["prompt"] > 0  # the judge's usage is metered on the test's item


def test_unparseable_judge_fails_the_test_never_guesses(pytester):
    with OpenAIServer(lambda request, number: Reply(content="Probably correct")) as judge:
        pytester.makepyfile(OWN_TEST)
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--model=medbench/oracle", "--medbench-no-cache",
            f"--judge-model=openai/judge@{judge.api_base}",
        )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["medbench_judge: *no verdict among ('Correct', 'Wrong')*"])
    assert "During handling" not in result.stdout.str()


def test_a_split_jury_is_wrong(pytester):
    yes_server = OpenAIServer(lambda request, number: Reply(content="Correct"))
    no_server = OpenAIServer(lambda request, number: Reply(content="Wrong"))
    with yes_server as yes, no_server as no:
        pytester.makepyfile(OWN_TEST)
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--model=medbench/oracle", "--medbench-no-cache",
            f"--judge-model=openai/a@{yes.api_base}", f"--judge-model=openai/b@{no.api_base}",
        )  # fmt: skip
    result.assert_outcomes(failed=1)  # one vote of two is no strict majority


def test_a_test_that_asks_no_model_has_no_empty_answer(pytester, tmp_path):
    pytester.makepyfile('def test_rule(medbench):\n    medbench.record("dose_rule", {"accuracy": 1.0})\n')
    pytester.runpytest("-p", "no:cacheprovider", f"--medbench-report={tmp_path / 'lb.json'}")
    task = json.loads((tmp_path / "lb.json").read_text())["tasks"][0]
    assert (task["task"], task["passed"], task["empty_answers"]) == ("dose_rule", 1, 0)


OUTPUTS = [("samples", "s.jsonl"), ("report", "lb.json"), ("html", "page.html")]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_text_that_is_not_utf8_is_kept_and_ends_nothing(pytester, tmp_path, workers):
    """A lone surrogate in a test's tags (a broken escape can bring one from any data file): the
    samples file, the leaderboard and the page are still written, and the tag reads back as it was;
    under -n it crosses xdist's wire, whose UTF-8 cannot carry it as it is."""
    pytester.makepyfile(
        'def test_rule(medbench):\n    medbench.record("dose_rule", {"accuracy": 1.0}, note="x\\ud800y")\n'
    )
    outputs = [f"--medbench-{kind}={tmp_path / name}" for kind, name in OUTPUTS]
    result = pytester.runpytest("-p", "no:cacheprovider", *outputs, *workers)
    assert result.ret == 0, result.stdout.str()
    sample = json.loads((tmp_path / "s.jsonl").read_text(encoding="utf-8"))
    assert sample["tags"] == {"note": "x\ud800y"}
    assert json.loads((tmp_path / "lb.json").read_text(encoding="utf-8"))["tasks"][0]["passed"] == 1
    assert "dose_rule" in (tmp_path / "page.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("model", ["medbench/oracle", "openai/m"])
def test_a_data_files_broken_escape_is_kept_and_ends_nothing(run_suites, tmp_path, model):
    """The same from a data file: the instance's id (a key of the leaderboard's items), its input and
    its reference carry a lone surrogate, as a broken escape in a released JSON file would give them.
    A real model is asked it as U+FFFD, through the cache."""
    broken = {"id": "a\ud800", "input": "Q\ud800?", "output": "emergent \ud800"}
    _write(tmp_path / "data" / "custom" / "triage.json", {**TASK, "Instances": [broken]})
    _write(tmp_path / "data" / "custom" / "triage.medbench.toml", 'scorer = "label"\nlabels = ["emergent"]\n')
    options = ["--medbench-data", str(tmp_path / "data"), f"--medbench-samples={tmp_path / 's.jsonl'}"]
    with OpenAIServer(lambda request, number: Reply(content="emergent")) as server:
        result, board = run_suites(*options, "--model", model, "--api-base", server.api_base)
    assert result.ret == 0, result.stdout.str()
    assert list(board["items"]["custom/triage"]) == ["a\ud800"]
    assert json.loads((tmp_path / "s.jsonl").read_text(encoding="utf-8"))["reference"] == "emergent \ud800"
    asked = [message["content"] for request in server.requests for message in request["messages"]]
    assert any("Q\ufffd?" in content for content in asked) == (model == "openai/m")


def test_a_judged_answer_with_a_lone_surrogate_is_fenced_and_judged(pytester):
    """medbench_judge.verdict on text with a lone surrogate (a test's own, a data file's broken
    escape): fenced and asked like any other, where hashing it for the fence raised UnicodeEncodeError."""
    with OpenAIServer(lambda request, number: Reply(content="Correct")) as judge:
        pytester.makepyfile(
            "def test_shock(medbench_judge, medbench):\n"
            '    correct = medbench_judge.verdict("Norepinephrine \\ud800", "Norepinephrine")\n'
            '    medbench.record("shock", {"accuracy": correct})\n'
        )
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--model=medbench/oracle", "--medbench-no-cache",
            f"--judge-model=openai/judge@{judge.api_base}",
        )  # fmt: skip
    result.assert_outcomes(passed=1)
    assert "Norepinephrine \ufffd\n<<<END-ANSWER-" in judge.requests[0]["messages"][-1]["content"]


def test_a_failed_items_broken_escape_is_shown_on_the_page(run_suites, tmp_path):
    """The page shows each failed item's prompt and reference: one with a lone surrogate there (a
    data file's broken escape) shows it as its JSON escape, in the run's page and in medbench html's,
    where writing it as UTF-8 ended both."""
    instances = [
        {"id": "a", "input": "Q\ud800?", "output": "emergent"},  # the baseline answers "routine": failed
        *({"id": name, "input": f"{name}?", "output": "routine"} for name in "bc"),
    ]
    _write(tmp_path / "data" / "custom" / "triage.json", {**TASK, "Instances": instances})
    _write(
        tmp_path / "data" / "custom" / "triage.medbench.toml",
        'scorer = "label"\nlabels = ["emergent", "routine"]\n',
    )
    page, samples = tmp_path / "page.html", tmp_path / "s.jsonl"
    options = [
        "--medbench-data",
        str(tmp_path / "data"),
        f"--medbench-samples={samples}",
        f"--medbench-html={page}",
    ]
    result, board = run_suites(*options, "--model", "medbench/baseline")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    assert (board["tasks"][0]["n"], board["tasks"][0]["passed"]) == (3, 2)
    assert "Input:\nQ\\ud800?" in page.read_text(encoding="utf-8")
    again = tmp_path / "again.html"
    assert (
        medbench_cli(
            ["html", str(tmp_path / "leaderboard.json"), "--samples", str(samples), "-o", str(again)]
        )
        == 0
    )
    assert "Input:\nQ\\ud800?" in again.read_text(encoding="utf-8")


WIDER_FIXTURE = """
import pytest

@pytest.fixture(scope="module")
def shared(medbench):
    medbench.record("shared_rule", {"accuracy": 1.0}, passed=True)

def test_a(shared):
    assert False

def test_b(shared):
    pass
"""


def test_a_wider_scoped_fixture_cannot_record_for_whichever_test_set_it_up(pytester, tmp_path):
    """``medbench`` acts for one test: a module-scoped fixture asking for it is pytest's scope error,
    never a record credited to the test that happened to set the fixture up."""
    pytester.makepyfile(WIDER_FIXTURE)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--medbench-report={tmp_path / 'lb.json'}")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*ScopeMismatch*"])
    assert not (tmp_path / "lb.json").exists()


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ('medbench.record("t", {"accuracy": 1.5})', "score accuracy=1.5 must be a number from 0 to 1"),
        ('medbench.record("t", {"n": 1})', "metric name 'n'"),
        ('medbench.record("t", {"accuracy": 1}, benchmark="meds")', "published benchmark"),
        ('medbench.record("a.b", {"accuracy": 1})', "task 'a.b'"),
        ('medbench.record("t", {"accuracy": 1}); medbench.record("t", {"accuracy": 1})', "called twice"),
    ],
)
def test_record_rejects_bad_arguments(pytester, call, fragment):
    pytester.makepyfile(f"def test_own(medbench):\n    {call}\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*ValueError: medbench.record in test_*.py::test_own: *{fragment}*"])


# -- examples/ -----------------------------------------------------------------------------------


@pytest.fixture
def examples(pytester):
    shutil.copytree(EXAMPLES, pytester.path, dirs_exist_ok=True)
    return pytester


def test_examples_run_offline_and_their_gates_decide(examples):
    result = examples.runpytest(
        "-p", "no:cacheprovider", "--medbench-report=lb.json", "--medbench-html=lb.html", "--junitxml=j.xml"
    )
    assert result.ret == 0  # one drug interaction is answered wrong; the gates still hold
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["medbench verdict: PASS (3 gates hold)"])
    board = json.loads((examples.path / "lb.json").read_text())
    tasks = {(t["benchmark"], t["task"]): t for t in board["tasks"]}
    drugs = tasks[("custom", "drug_interactions")]
    assert (drugs["n"], drugs["passed"]) == (4, 3)  # replay answers: lithium_ibuprofen is wrong
    # Wilson 95% for 3/4 by hand: centre (0.75 + z^2/8) / (1 + z^2/4) = 0.6275,
    # half-width z * sqrt(0.75 * 0.25 / 4 + z^2 / 64) / (1 + z^2/4) = 0.3269
    assert drugs["metrics"]["accuracy"]["value"] == 75.0
    assert drugs["metrics"]["accuracy"]["ci95"] == pytest.approx([30.06, 95.44], abs=0.01)
    assert tasks[("custom", "triage_category")]["category"] == "triage"  # declared by its sidecar
    assert tasks[("custom", "triage_category")]["passed"] == 3
    assert tasks[("custom", "sepsis_handover")]["category"] == "handover"  # declared in pyproject
    assert "drug_interactions" in (examples.path / "lb.html").read_text()
    fingerprinted = set(board["run"]["data"]["files"])  # own task data is part of the run's provenance
    assert {"custom/triage_category.json", "custom/triage_category.medbench.toml"} <= fingerprinted
    properties = {
        (p.get("name"), p.get("value"))
        for case in ET.parse(examples.path / "j.xml").iter("testcase")
        if case.get("name") == "test_drug_interaction[lithium_ibuprofen]"
        for p in case.iter("property")
    }
    assert {("medbench.task", "custom.drug_interactions"), ("medbench.accuracy", "0.0")} <= properties


def test_examples_gate_fails_when_the_model_regresses(examples, capsys):
    examples.runpytest("-p", "no:cacheprovider", "--medbench-report=base.json")
    answers = (examples.path / "answers.jsonl").read_text().replace("is A: It rises", "is B: It falls")
    (examples.path / "worse.jsonl").write_text(answers)
    result = examples.runpytest(
        "-p", "no:cacheprovider", "--model=replay:worse.jsonl", "--medbench-report=new.json"
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*custom.drug_interactions.accuracy = 50 (needs >= 70)*"])
    capsys.readouterr()
    medbench_cli(["compare", str(examples.path / "base.json"), str(examples.path / "new.json")])
    assert "drug_interactions" in capsys.readouterr().out


def test_examples_leaderboard_under_xdist_equals_one_process(examples):
    examples.runpytest("-p", "no:cacheprovider", "--medbench-report=one.json")
    examples.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--medbench-report=two.json")
    one, two = (json.loads((examples.path / name).read_text()) for name in ("one.json", "two.json"))
    assert stable(two) == stable(one)
    assert two["items"] == one["items"]
    assert len(one["items"]["custom/drug_interactions"]) == 4


def test_a_run_of_benchmark_and_declared_tasks_audits_both(run_suites, tmp_path):
    """MedS-Bench items and declared ones in one run: each task entry gets the audit of its own kind."""
    data = tmp_path / "data"
    (data / "meds-bench").mkdir(parents=True)
    task57 = FIXTURES / "meds-bench" / "MCQA" / "task57_medqa_usmle.jsonl"
    (data / "meds-bench" / task57.name).write_bytes(task57.read_bytes())
    two = {**TASK, "Instances": [*TASK["Instances"], {"id": "b", "input": "R?", "output": "routine"}]}
    _write(data / "custom" / "triage.json", two)
    _write(data / "custom" / "triage.medbench.toml", 'scorer = "label"\nlabels = ["emergent", "routine"]\n')
    _, board = run_suites("--medbench-data", str(data), "--model", "medbench/oracle")
    audits = {(task["benchmark"], task["task"]): task["audit"] for task in board["tasks"]}
    assert audits[("custom", "triage")]["instances"] == 2  # audited as MedS-format items, not as cases
    assert audits[("meds", "task57")]["instances"] == 5
