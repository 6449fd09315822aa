"""Deployment gates, baseline comparison, exit codes, summaries and the medbench command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from openai_server import OpenAIServer, Reply

from conftest import FIXTURES, SUITES
from pytest_medbench.cli import main
from pytest_medbench.report import leaderboard
from pytest_medbench.report.compare import CompareError, compare
from pytest_medbench.report.gates import Gate, GateError, check, resolve
from pytest_medbench.report.records import ItemRecord


def test_gates_parse_and_reject_malformed_expressions():
    assert Gate.parse(" meds.mcqa.accuracy >= 60 ") == Gate("meds.mcqa.accuracy", ">=", 60.0)
    assert Gate.parse("medr.accuracy<70.5") == Gate("medr.accuracy", "<", 70.5)
    for bad in (
        "meds.mcqa.accuracy",
        "accuracy>=60",
        "meds.mcqa.accuracy=>60",
        "meds.mcqa.accuracy>=sixty",
        "",
    ):
        with pytest.raises(GateError, match="malformed gate"):
            Gate.parse(bad)


def test_gates_met_pass_the_run_although_items_fail(run_suites, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result, _ = run_suites("--medbench-gate", "meds.task57.accuracy>=60", "--medbench-gate", "meds.errors<=0")
    assert result.ret == 0
    assert result.parseoutcomes()["failed"] > 0  # wrong answers, yet the verdict passes
    assert result.outlines[-1] == "medbench verdict: PASS (2 gates hold)"
    assert "## medbench verdict: PASS (2 gates hold)" in summary.read_text()
    assert "| `meds.task57.accuracy>=60` | 60 | pass |" in summary.read_text()


def test_a_missed_gate_fails_with_its_value_on_the_last_line(run_suites):
    result, _ = run_suites("--medbench-gate", "meds.mcqa.accuracy>=60", "--medbench-gate", "medr.accuracy>=0")
    assert result.ret == 1
    assert result.outlines[-1] == "medbench verdict: FAIL: gate meds.mcqa.accuracy = 27.5 (needs >= 60)"


def test_malformed_and_unknown_gates_are_usage_errors(run_suites):
    result, _ = run_suites("--medbench-gate", "meds.mcqa.accuracy=>60")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*malformed gate 'meds.mcqa.accuracy=>60'*"])
    result, _ = run_suites("-k", "task57", "--medbench-gate", "meds.mcqa.f1>=60")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # the three closest paths (the category's own), not the whole list of valid paths
    message, closest = result.outlines[-1].split("; closest valid paths: ")
    assert message == "medbench verdict: ERROR: unknown gate path 'meds.mcqa.f1'"
    assert len(closest.split(", ")) == 3
    assert all(path.startswith("meds.mcqa.") for path in closest.split(", "))


def test_a_gate_on_an_entry_the_data_lacks_stops_before_any_model_call(run_suites, openai_server):
    # a model at a live server: had any item run, the server would have seen its call
    result, _ = run_suites(
        "--model",
        "openai/m",
        "--api-base",
        openai_server.api_base,
        "--medbench-gate",
        "meds.nosuch.accuracy>=60",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert openai_server.requests == []
    message, closest = result.stderr.lines[0].split("; closest entries: ")
    assert (
        message
        == "ERROR: unknown gate path 'meds.nosuch.accuracy': the run's data has no entry 'meds.nosuch'"
    )
    assert {"meds.nli", "meds.ner"} < set(closest.split(", "))  # the nearest spellings, three of them
    assert len(closest.split(", ")) == 3


def test_gates_from_pyproject(pytester):
    pytester.makepyprojecttoml('[tool.medbench]\ngates = ["meds.task57.accuracy>=100"]\n')
    result = pytester.runpytest(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(pytester.path),
        "-c",
        str(pytester.path / "pyproject.toml"),
        "-k",
        "task57",
        "--model",
        "medbench/oracle",
        "--medbench-no-cache",
    )
    assert result.ret == 0
    assert result.outlines[-1] == "medbench verdict: PASS (1 gates hold)"


def test_data_errors_fail_a_gated_run_even_when_the_gates_hold(run_suites, tmp_path):
    data = tmp_path / "data" / "meds-bench"
    data.mkdir(parents=True)
    (data / "task57_medqa.json").write_text(
        (FIXTURES / "meds-bench/MCQA/task57_medqa_usmle.jsonl").read_text()
    )
    (data / "task122_medmcqa.json").write_text("{not json")
    result, _ = run_suites(
        "--medbench-data",
        str(data.parent),
        "--model",
        "medbench/oracle",
        "--medbench-gate",
        "meds.task57.accuracy>=90",
    )
    assert result.ret == 1
    assert result.outlines[-1] == "medbench verdict: FAIL: 1 items failed on data or harness errors"


def test_junitxml_gets_each_items_scores_as_properties(run_suites, tmp_path):
    junit = tmp_path / "junit.xml"
    run_suites("-k", "task57", "--junitxml", str(junit))
    xml = junit.read_text()
    assert '<property name="medbench.accuracy" value="1.0"' in xml
    assert '<property name="medbench.task" value="meds.task57"' in xml
    assert "messages" not in xml  # the bulky record stays out of the XML


def synthetic_run(outcomes: list[int]) -> dict:
    """A schema-valid leaderboard of one accuracy task whose per-item answers are known."""
    records = [
        ItemRecord("meds", "task57", "mcqa", str(i), scores={"accuracy": float(o)}, passed=bool(o))
        for i, o in enumerate(outcomes)
    ]
    run = json.loads((FIXTURES.parent / "tests" / "run_metadata.json").read_text())
    return leaderboard.build(run, records)


def test_a_significant_drop_is_a_regression_and_a_noisy_one_is_not():
    baseline = synthetic_run([1] * 160 + [0] * 40)
    worse = synthetic_run([0] * 20 + [1] * 140 + [0] * 40)  # 20 of the right answers now wrong
    (task,) = [c for c in compare(baseline, worse) if c.scope == "task"]
    assert (task.old, task.new, task.delta, task.test) == (80.0, 70.0, -10.0, "mcnemar exact")
    assert task.p_value < 1e-5 and task.regressed(2, 0.05)
    assert task.ci95[1] < 0
    small = synthetic_run([1] * 30 + [0] * 10)
    noisy = synthetic_run([0] * 3 + [1] * 27 + [0] * 10)  # 7.5 points down, on 3 discordant pairs
    (task,) = [c for c in compare(small, noisy) if c.scope == "task"]
    assert task.delta == -7.5 and task.p_value == pytest.approx(0.25)
    assert not task.regressed(2, 0.05)


def test_baselines_from_other_schema_versions_are_refused():
    run = synthetic_run([1, 0, 1])
    with pytest.raises(CompareError, match=r"schema version 2\.0 is not supported"):
        compare({**run, "schema_version": "2.0"}, run)
    old = {key: value for key, value in run.items() if key != "items"} | {"schema_version": "1.0"}
    with pytest.raises(CompareError, match=r"baseline \(schema 1.0\) has no per-item scores"):
        compare(old, run)


def copied_task57(tmp_path, copies: int):
    """A data directory whose task57 holds the fixture's 5 questions ``copies`` times (the baseline
    model gets the same 2 of each 5 wrong), and the fixture's HoC task."""
    data = tmp_path / "data" / "meds-bench"
    data.mkdir(parents=True)
    task = json.loads((FIXTURES / "meds-bench/MCQA/task57_medqa_usmle.jsonl").read_text())
    task["Instances"] = task["Instances"] * copies
    (data / "task57_medqa_usmle.json").write_text(json.dumps(task))
    hoc = FIXTURES / "meds-bench/Text_classification/task106_hoc.json"
    (data / "task106_hoc.json").write_text(hoc.read_text())
    return data.parent


def test_baseline_regression_fails_the_run(run_suites, tmp_path):
    data = str(copied_task57(tmp_path, 5))
    run_suites("--medbench-data", data, "--model", "medbench/oracle", report="baseline.json")
    result, _ = run_suites("--medbench-data", data, "--medbench-baseline", str(tmp_path / "baseline.json"))
    assert result.ret == 1
    # 25 items, 10 right answers now wrong and none the other way: McNemar p = 2 / 2**10; four task
    # metrics (task106's three have p = 2 / 2**4 on 4 items), so the BH-adjusted p is 4 times it.
    assert result.outlines[-1] == (
        "medbench verdict: FAIL: meds.task57.accuracy dropped 40.00 points (p=0.00195, BH-adjusted 0.00781); "
        "meds.mcqa.accuracy dropped 40.00 points (p=0.00195, BH-adjusted 0.00781); "
        "meds.accuracy dropped 40.00 points (p=0.00195, BH-adjusted 0.00781)"
    )
    result.stdout.fnmatch_lines(
        ["*medbench comparison with the baseline*", "meds.task106.f1 *cannot detect any drop on 4 items"]
    )


def test_a_four_item_task_cannot_detect_a_drop_rather_than_passing_it(run_suites, tmp_path):
    """The HoC fixture has 4 items: the old paired bootstrap gave p = 0.002 for its drop; no test on 4
    paired items can go below 2 / 2**4."""
    run_suites("-k", "task106", "--model", "medbench/oracle", report="baseline.json")
    result, _ = run_suites("-k", "task106", "--medbench-baseline", str(tmp_path / "baseline.json"))
    assert result.ret == 0
    result.stdout.fnmatch_lines(["meds.task106.f1 * 0.2500 *none*4*cannot detect any drop on 4 items"])


def test_the_medbench_command(tmp_path, capsys):
    base, worse = tmp_path / "base.json", tmp_path / "worse.json"
    base.write_text(json.dumps(synthetic_run([1] * 160 + [0] * 40)))
    worse.write_text(json.dumps(synthetic_run([0] * 20 + [1] * 140 + [0] * 40)))
    assert main(["show", str(base)]) == 0
    assert "task57" in capsys.readouterr().out
    assert main(["compare", str(base), str(base)]) == 0
    assert main(["compare", str(base), str(worse)]) == 1
    assert "REGRESSED" in capsys.readouterr().out
    assert main(["compare", str(base), str(worse), "--max-drop", "15"]) == 0
    (tmp_path / "junk.json").write_text("[]")
    assert main(["show", str(tmp_path / "junk.json")]) == 2
    command = [sys.executable, "-m", "pytest_medbench.cli", "show", str(tmp_path / "nope.json")]
    installed = subprocess.run(command, capture_output=True, text=True)
    assert installed.returncode == 2 and "cannot read" in installed.stderr


def test_a_run_whose_every_item_errored_fails_against_its_baseline_as_the_command_does(run_suites, tmp_path):
    """No score, no comparison: 'no significant drop' would be a pass on nothing. Model errors alone do
    not fail a gated run (docs/ci.md), but a baseline that could not be compared does: exit 1."""
    run_suites("-k", "task57", report="baseline.json")
    baseline = tmp_path / "baseline.json"
    with OpenAIServer(lambda request, number: Reply(status=500, content="boom")) as server:
        result, board = run_suites(
            *(
                "-k",
                "task57",
                "--model",
                "openai/m",
                "--api-base",
                server.api_base,
                "--medbench-retries",
                "0",
            ),
            *("--medbench-baseline", str(baseline)),
        )
    (task,) = board["tasks"]
    assert (task["n"], task["errors"], task["metrics"]) == (5, 5, {})
    assert result.ret == 1
    expected = (
        "nothing compared with the baseline (this run scored none of the task's items: meds.task57.accuracy)"
    )
    assert result.outlines[-1] == f"medbench verdict: FAIL: {expected}"
    result.stdout.fnmatch_lines(
        [
            "*medbench comparison with the baseline*",
            "meds.task57.accuracy *NOT COMPARED: this run scored none*",
        ]
    )
    out = tmp_path / "compare.json"
    assert main(["compare", str(baseline), str(tmp_path / "leaderboard.json"), "--json", str(out)]) == 1
    document = json.loads(out.read_text())
    assert (document["passed"], document["regressed"], document["comparisons"]) == (False, [], [])
    assert document["not_compared"] == [
        {"metric": "meds.task57.accuracy", "reason": "this run scored none of the task's items"}
    ]


def test_a_gate_whose_metric_could_not_be_computed_fails_and_every_gate_is_reported(run_suites, tmp_path):
    """task123's items all error (the replay has no answer for them): its accuracy is not computed, not
    an unknown path (exit 4), and the other gates are still checked and shown."""
    replay = tmp_path / "replay.jsonl"
    answers = ["B", "C", "A", "D", "A"]  # the fixture's task57 golds
    replay.write_text(
        "".join(
            json.dumps({"task": "task57", "id": str(i), "output": f"The right answer is {letter}"}) + "\n"
            for i, letter in enumerate(answers)
        )
    )
    gates = ("meds.task123.accuracy>=0", "meds.mcqa.accuracy>=0", "meds.task57.accuracy>=100")
    result, board = run_suites(
        "-k",
        "task57 or task123",
        "--model",
        f"replay:{replay}",
        *(f"--medbench-gate={gate}" for gate in gates),
    )
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["task123"]["errors"] == tasks["task123"]["n"] == 4
    assert tasks["task57"]["metrics"]["accuracy"]["value"] == 100.0
    assert result.ret == 1
    assert result.outlines[-1] == (
        "medbench verdict: FAIL: gate meds.task123.accuracy = not computed (needs >= 0)"
    )
    result.stdout.fnmatch_lines(
        [
            "gate meds.task123.accuracy = not computed (needs >= 0): FAILS",
            "gate meds.mcqa.accuracy = 100 (needs >= 0): holds",
            "gate meds.task57.accuracy = 100 (needs >= 100): holds",
        ]
    )


def test_reasoning_metrics_without_a_judge_fail_their_gates_at_every_level(run_suites):
    """docs/ci.md: a reasoning metric the run could not judge fails its gate, whether the gate names
    the setting, the category or the benchmark."""
    gates = (
        "medr.oracle_diagnosis.efficiency>=0",
        "medr.diagnosis.efficiency>=0",
        "medr.efficiency>=0",
        "medr.oracle_diagnosis.accuracy>=0",
    )
    result, board = run_suites(
        "-k", "oracle_diagnosis", "--model", "medbench/oracle", *(f"--medbench-gate={gate}" for gate in gates)
    )
    (task,) = board["tasks"]
    assert "efficiency" in task["not_judged"]
    assert result.ret == 1
    assert result.outlines[-1] == (
        "medbench verdict: FAIL: gate medr.oracle_diagnosis.efficiency = not computed (needs >= 0); "
        "gate medr.diagnosis.efficiency = not computed (needs >= 0); "
        "gate medr.efficiency = not computed (needs >= 0)"
    )
    result.stdout.fnmatch_lines(["gate medr.oracle_diagnosis.accuracy = 100 (needs >= 0): holds"])


def test_not_computed_is_told_from_a_misspelt_path():
    def items(task: str, category: str, errored: bool) -> list[ItemRecord]:
        fields = (
            {"error": {"kind": "server", "message": "boom"}} if errored else {"scores": {"accuracy": 1.0}}
        )
        return [ItemRecord("meds", task, category, str(i), **fields) for i in range(3)]

    run = json.loads((FIXTURES.parent / "tests" / "run_metadata.json").read_text())
    board = leaderboard.build(run, items("task57", "mcqa", False) + items("task130", "diagnosis", True))
    assert (
        resolve(board, "meds.task130.accuracy") is None
    )  # a metric the run knows, on a task it could not score
    assert resolve(board, "meds.diagnosis.accuracy") is None
    with pytest.raises(GateError, match=r"unknown gate path 'meds\.task130\.acuracy'"):
        resolve(board, "meds.task130.acuracy")  # no entry has such a metric
    with pytest.raises(GateError, match=r"unknown gate path 'meds\.task57\.f1'"):
        resolve(board, "meds.task57.f1")  # task57 was scored: its metrics are known
    # every item errored: the leaderboard names no metric, so none can be told from a misspelling
    down = leaderboard.build(run, items("task57", "mcqa", True))
    assert resolve(down, "meds.mcqa.accuracy") is None and resolve(down, "meds.errors") == 3.0
    # every unknown path is named, not only the first
    with pytest.raises(GateError) as error:
        check([Gate.parse("meds.task57.f1>=0"), Gate.parse("meds.nosuch.accuracy>=0")], board)
    assert "'meds.task57.f1'" in str(error.value) and "'meds.nosuch.accuracy'" in str(error.value)


@pytest.mark.parametrize(
    "content", ["[]", '{"schema_version": "1.1", "items": {}}'], ids=["list", "no_tasks"]
)
def test_a_baseline_that_is_not_a_leaderboard_is_a_usage_error_naming_it(run_suites, tmp_path, content):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(content)
    result, board = run_suites("-k", "task57", "--medbench-baseline", str(baseline))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # said before any item runs, not after the run has been paid for
    result.stderr.fnmatch_lines(
        [f"ERROR: --medbench-baseline: the baseline {baseline} is not a pytest-medbench leaderboard"]
    )
    assert board is None and "passed" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert main(["compare", str(baseline), str(tmp_path / "leaderboard.json")]) == 2  # as the command says
