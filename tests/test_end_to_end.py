"""Whole runs of the suites on the bundled fixtures with the built-in models."""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai_server import Reply

from conftest import FIXTURES, SUITES, mcqa_data, run_python, stable
from pytest_medbench.report.leaderboard import LeaderboardError, _items_plainly_valid, _validator, validate


def test_oracle_is_perfect_on_every_bundled_task_under_strict_scoring(run_suites, tmp_path):
    result, board = run_suites(
        "--model",
        "medbench/oracle",
        "--medbench-scoring",
        "strict",
        "--medbench-samples",
        str(tmp_path / "samples.jsonl"),
    )
    assert result.ret == 0
    assert len(board["tasks"]) == 25  # 19 MedS tasks + 6 MedR settings
    for task in board["tasks"]:
        assert task["errors"] == 0 and task["passed"] == task["n"] > 0, task["task"]
        for name, metric in task["metrics"].items():
            assert metric["value"] == pytest.approx(100.0, abs=1e-3), (task["task"], name)
    samples = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == sum(task["n"] for task in board["tasks"])
    assert {"benchmark", "task", "id", "messages", "output", "parsed", "scores", "passed", "error"} <= set(
        samples[0]
    )


def test_official_scoring_keeps_the_released_codes_blind_spots(run_suites):
    """The released MCQA rule reads only a leading a-d (y/n): localised golds and 'maybe' never score."""
    _, board = run_suites("--model", "medbench/oracle", "-k", "mcqa")
    accuracy = {task["task"]: task["metrics"]["accuracy"]["value"] for task in board["tasks"]}
    assert accuracy == {"task57": 100.0, "task123": 75.0, "task58": 0.0, "task60": 0.0}
    assert board["run"]["scoring"]["meds_scoring"] == "official"


def test_baseline_is_below_the_oracle_everywhere(run_suites):
    _, oracle = run_suites("--model", "medbench/oracle", "--medbench-scoring", "strict", report="oracle.json")
    _, baseline = run_suites(
        "--model", "medbench/baseline", "--medbench-scoring", "strict", report="baseline.json"
    )
    oracle_values = {(t["task"], m): v["value"] for t in oracle["tasks"] for m, v in t["metrics"].items()}
    for task in baseline["tasks"]:
        assert task["errors"] == 0
        for name, metric in task["metrics"].items():
            assert metric["value"] < oracle_values[(task["task"], name)], (task["task"], name)


def test_same_leaderboard_with_xdist(run_suites, tmp_path):
    """And the same records: every field of every item's record crosses xdist's wire unchanged, but
    the usage (latencies; a MedR-Bench dialogue whose two settings ran on two workers pays its calls
    twice, where one process reuses them)."""

    def records(name: str) -> dict[str, dict]:
        lines = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        return {
            record["nodeid"]: {key: value for key, value in record.items() if "usage" not in key}
            for record in map(json.loads, lines)
        }

    baseline = ("--model", "medbench/baseline")
    _, single = run_suites(*baseline, "--medbench-samples", str(tmp_path / "one.jsonl"))
    xdist = ("-n", "2", "--medbench-samples", str(tmp_path / "xdist.jsonl"))
    _, distributed = run_suites(*baseline, *xdist, report="xdist.json")
    assert stable(single) == stable(distributed)
    assert sum(task["n"] for task in single["tasks"]) == 99  # 77 MedS + 4 x 5 + 2 MedR
    assert records("one.jsonl") == records("xdist.jsonl")
    assert len(records("one.jsonl")) == 99


def test_under_xdist_this_runs_answers_are_not_taken_for_an_earlier_runs(run_suites, monkeypatch, tmp_path):
    """``run.cache`` under -n is one process's: the workers stamp each answer with the run's id, the
    same the controller reports, so a fresh cache has reused nothing (before, the workers' id was
    xdist's and the controller's its own: 5 of 5 answers "reused" from an earlier run)."""
    from openai_server import OpenAIServer, echo_last_user

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    sections = {}
    with OpenAIServer(echo_last_user) as server:
        for way, more in (("one", []), ("xdist", ["-n", "2"])):
            _, board = run_suites(
                "-k", "task57", "--model=openai/served", f"--api-base={server.api_base}",
                "--medbench-cache", str(tmp_path / f"{way}.sqlite3"), *more, report=f"{way}.json",
            )  # fmt: skip
            sections[way] = board["run"]["cache"]
    for section in sections.values():
        assert (section["reused"], section["runs"], section["served_models"]) == (0, [], ["served"])


def test_a_one_task_category_has_its_tasks_interval_for_a_corpus_metric():
    """HoC's macro F1 is a corpus metric with a seeded bootstrap interval, which depends on the order
    of the items: with ids 0-13 the task's items (sorted by id: "0", "1", "10", ...) and the
    category's (as they came) were in two orders, and text_classification, whose one task is
    task106, had another interval than task106 (README: a one-task category is its task)."""
    from pytest_medbench.data.meds_tasks import TASKS
    from pytest_medbench.metrics.meds import score_meds
    from pytest_medbench.metrics.sets import HOC_LABELS
    from pytest_medbench.report.aggregate import aggregate
    from pytest_medbench.report.records import ItemRecord

    records = []
    for number in range(14):  # in collection order: 0, 1, 2, ..., 13
        gold = HOC_LABELS[number % 3]
        answer = HOC_LABELS[number % 3 if number % 4 else (number + 1) % 3]  # every 4th answer wrong
        score = score_meds(TASKS["task106"], answer, gold)
        record = ItemRecord("meds", "task106", "text_classification", str(number))
        record.scores, record.counts, record.aggregation = score.scores, score.counts, score.aggregation
        records.append(record)
    board = aggregate(records)
    (task,), (category,) = board["tasks"], board["categories"]
    for name in ("f1", "precision", "recall"):
        assert category["metrics"][name] == task["metrics"][name], name


def test_leaderboard_is_valid_and_complete(run_suites):
    _, board = run_suites("--model", "medbench/oracle", "--medbench-limit", "2")
    validate(board)  # raises on any schema violation
    run = board["run"]
    assert run["model"] == {
        "name": "medbench/oracle",
        "litellm_model": "medbench/oracle",
        "api_base": None,
        "builtin": True,
    }
    assert "meds-bench/MCQA/task57_medqa_usmle.jsonl" in run["data"]["files"]
    assert "medr_oracle_diagnosis" in run["prompt_templates"]
    assert all(task["n"] <= 2 for task in board["tasks"])
    broken = json.loads(json.dumps(board))
    broken["tasks"][0]["metrics"]["accuracy"] = {"value": 140, "ci95": [0, 1], "n": 1}
    with pytest.raises(LeaderboardError, match="/tasks/0/metrics/accuracy/value"):
        validate(broken)


anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
number = st.none() | st.integers() | st.floats()
good_entry = st.fixed_dictionaries(
    {"passed": st.booleans(), "scores": st.dictionaries(st.text(max_size=3), number, max_size=3)},
    optional={
        "error": st.none() | st.text(max_size=3),
        "counts": st.dictionaries(st.text(max_size=3), st.integers() | st.floats(), max_size=3),
        "unscorable": st.booleans(),
    },
)
entry_like = good_entry | st.dictionaries(
    st.sampled_from(["passed", "scores", "error", "counts", "unscorable", "other"]), anything, max_size=5
)
items_like = st.dictionaries(
    st.text(max_size=3), st.dictionaries(st.text(max_size=3), entry_like, max_size=3)
)


def _schema_accepts_items(items: object) -> bool:
    errors = _validator().iter_errors({"items": items})
    return not [error for error in errors if list(error.absolute_path)[:1] == ["items"]]


@given(st.dictionaries(st.text(max_size=3), st.dictionaries(st.text(max_size=3), good_entry, max_size=3)))
def test_every_well_formed_items_section_takes_the_fast_path(items):
    assert _items_plainly_valid(items) and _schema_accepts_items(items)


@settings(max_examples=400)
@given(items_like | anything)
def test_what_the_fast_items_check_passes_the_schema_passes(items):
    if _items_plainly_valid(items):
        assert _schema_accepts_items(items)


def test_a_bad_item_entry_is_still_reported_where_it_is(run_suites):
    _, board = run_suites("--model", "medbench/oracle", "--medbench-limit", "2")
    broken = json.loads(json.dumps(board))
    task = next(iter(broken["items"]))
    item = next(iter(broken["items"][task]))
    broken["items"][task][item]["scores"]["accuracy"] = "1"
    with pytest.raises(LeaderboardError, match=f"/items/{task}/{item}/scores/accuracy"):
        validate(broken)


def test_replay_rescores_recorded_outputs(run_suites, tmp_path):
    replay = tmp_path / "replay.jsonl"
    records = [
        {"task": "task57", "id": "0", "output": "The right answer is B: Magnetic resonance imaging"},
        {"task": "task57", "id": "1", "output": "The right answer is A: Vitamin A"},
        {
            "case": "PMC90000001",
            "setting": "oracle_diagnosis",
            "output": "### Reasoning:\n<step 1> x\n### Answer:\nGraves disease",
        },
    ]
    replay.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result, board = run_suites("--model", f"replay:{replay}", "-k", "task57 or PMC90000001")
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["task57"]["passed"] == 1 and tasks["task57"]["errors"] == 3  # ids 2-4 have no record
    assert tasks["oracle_diagnosis"]["passed"] == 1
    result.stdout.fnmatch_lines(["*replay_missing*has no record for task57 2*"])


def test_malformed_task_file_is_one_clear_error_and_the_rest_still_runs(run_suites, tmp_path):
    data = tmp_path / "data"
    (data / "meds-bench" / "MCQA").mkdir(parents=True)
    source = json.loads((FIXTURES / "meds-bench" / "MCQA" / "task57_medqa_usmle.jsonl").read_text())
    (data / "meds-bench" / "MCQA" / "task57_medqa_usmle.json").write_text(json.dumps(source))
    source["Instances"][2]["output"] = 7
    (data / "meds-bench" / "MCQA" / "task122_medmcqa.json").write_text(json.dumps(source))
    (data / "meds-bench" / "MCQA" / "task129_headqa.json").write_text('{"Definition": ["x"], "Instances": [')
    result, board = run_suites("--model", "medbench/oracle", "--medbench-data", str(data))
    result.stdout.fnmatch_lines(
        [
            "*task122_medmcqa.json at /Instances/2/output: 7 is not valid under any of the given schemas*",
            "*task129_headqa.json at line 1 column *: invalid JSON*",
        ]
    )
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["task57"]["passed"] == 5
    assert tasks["task122_medmcqa"]["errors"] == 1 and tasks["task129_headqa"]["errors"] == 1


def test_a_local_server_model_with_epochs_and_a_failing_item(run_suites, tmp_path, monkeypatch):
    """Each item is asked once per epoch; an item whose calls fail is an error in the report, not a crash."""
    from openai_server import OpenAIServer, Reply

    def responder(request, number):
        question = request["messages"][-1]["content"]
        if "scurvy" in question:
            return Reply(status=500, content="model crashed")
        return Reply(content="The right answer is A: whatever")

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    samples = tmp_path / "samples.jsonl"
    with OpenAIServer(responder) as server:
        result, board = run_suites(
            "--model",
            "openai/local-model",
            "--api-base",
            server.api_base,
            "-k",
            "task57",
            "--medbench-epochs",
            "2",
            "--medbench-no-cache",
            "--medbench-retries",
            "1",
            "--medbench-samples",
            str(samples),
        )
    task = board["tasks"][0]
    assert (task["n"], task["errors"], task["passed"]) == (5, 1, 2)  # gold A for instances 2 and 4
    assert task["metrics"]["accuracy"]["value"] == 50.0 and task["metrics"]["accuracy"]["n"] == 4
    assert len(server.requests) == 4 * 2 + 2  # 4 good items x 2 epochs, the failing one tried twice
    lines = [json.loads(line) for line in samples.read_text().splitlines()]
    failed = [line for line in lines if line["error"]]
    assert len(failed) == 1 and failed[0]["error"]["kind"] == "server"
    assert all(len(line["epoch_outputs"]) == 2 for line in lines if not line["error"])
    result.stdout.fnmatch_lines(["*task57 1: server error from model 'openai/local-model' after 2 attempts*"])
    assert board["run"]["model"]["api_base"] == server.api_base


def test_strict_hoc_over_epochs_counts_a_label_only_a_later_epoch_answers(run_suites, tmp_path, monkeypatch):
    """Strict HoC counts only the labels an item's answer or gold uses, so two epochs can count
    different labels: the item's counts are every epoch's, not the first epoch's keys only."""
    from openai_server import OpenAIServer, Reply

    folder = tmp_path / "data" / "meds-bench" / "Text_classification"
    folder.mkdir(parents=True)
    instance = {"input": "Abstract: new vessels feed the tumour.", "output": "inducing angiogenesis"}
    task = {"Definition": ["Name the hallmarks."], "Instances": [instance]}
    (folder / "task106_hoc.json").write_text(json.dumps(task))
    answers = ["inducing angiogenesis", "inducing angiogenesis, cellular energetics"]  # epochs 1 and 2
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAIServer(lambda request, number: Reply(content=answers[number - 1])) as server:
        _, board = run_suites(
            "--model=openai/m", f"--api-base={server.api_base}", f"--medbench-data={tmp_path / 'data'}",
            "--medbench-shots=0", "--medbench-epochs=2", "--medbench-no-cache", "--medbench-scoring=strict",
        )  # fmt: skip
    # summed over the epochs: angiogenesis tp 2 (P = R = F1 = 1); cellular energetics fp 1 (0, 0, 0);
    # the macro average over those two labels: 0.5 each
    metrics = board["tasks"][0]["metrics"]
    assert [metrics[name]["value"] for name in ("precision", "recall", "f1")] == [50.0, 50.0, 50.0]


def test_absent_and_physionet_gated_tasks_are_listed(run_suites):
    _, board = run_suites("--model", "medbench/oracle", "-k", "task57")
    absent = board["run"]["meds_tasks_absent"]
    assert "task57" not in absent and "task122" in absent
    assert absent["task112"].startswith("PhysioNet-gated MIMIC task")
    assert absent["task122"] == "not in the data directory"


def test_concurrency_prefetches_in_parallel_and_gives_the_same_leaderboard(run_suites, monkeypatch):
    """With a 0.3 s latency, 17 items answered 8 at a time overlap; the scores equal a sequential run's."""
    import threading
    import time

    from openai_server import OpenAIServer, Reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def slow(request, number):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.3)
        with lock:
            in_flight[0] -= 1
        return Reply(content="The right answer is A: x")

    with OpenAIServer(slow) as server:
        options = ["-k", "mcqa", "--model=openai/slow", f"--api-base={server.api_base}"]
        _, sequential = run_suites(*options, "--medbench-no-cache", report="sequential.json")
        assert peak[0] == 1
        result, concurrent = run_suites(
            *options,
            "--medbench-no-cache",
            "--medbench-concurrency=8",
            "--medbench-progress=on",
            report="c.json",
        )
    assert peak[0] >= 6
    assert (
        len(server.requests) == 2 * 17
    )  # each item asked once per run: the tests read the prefetched answers

    def scores(board: dict) -> list[tuple]:
        return [(t["task"], t["n"], t["passed"], t["errors"], t["metrics"]) for t in board["tasks"]]

    assert scores(sequential) == scores(concurrent)
    # the tokens the prefetch paid for are reported, not hidden as cache hits
    tokens = [(t["task"], t["tokens"], t["cache_hits"]) for t in concurrent["tasks"]]
    assert tokens == [(t["task"], t["tokens"], t["cache_hits"]) for t in sequential["tasks"]]
    assert all(t["tokens"]["prompt"] > 0 for t in concurrent["tasks"])
    # the tests run as their answers arrive, so theirs is the only progress
    result.stdout.fnmatch_lines(["[[]medbench[]] 17/17 items (100%)*"])
    assert "[medbench] prefetch" not in result.stdout.str()


def test_concurrency_overlaps_the_tests_with_the_calls_still_in_flight(pytester, tmp_path, monkeypatch):
    """The tests consume answers as they arrive: the first test reports while later calls are still
    to be answered (a prefetch that ran to the end first would leave every late call waiting in
    vain for a test report), and each item is still asked once."""
    import threading

    from openai_server import OpenAIServer, Reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    first_report, late_saw_a_report = threading.Event(), []

    def answer(request, number):
        if number > 4:  # beyond the first round of calls in flight
            late_saw_a_report.append(first_report.wait(timeout=2))
        return Reply(content="The right answer is A: x", hang_s=0.2)

    class Watch:
        def pytest_runtest_logreport(self, report):
            if report.when == "call":
                first_report.set()

    with OpenAIServer(answer) as server:
        result = pytester.runpytest(
            str(SUITES),
            "-p",
            "no:cacheprovider",
            "-k",
            "mcqa",
            "--model=openai/slow",
            f"--api-base={server.api_base}",
            "--medbench-no-cache",
            "--medbench-concurrency=4",
            "--medbench-report",
            str(tmp_path / "leaderboard.json"),
            plugins=[Watch()],
        )
    assert result.ret in (0, 1) and len(server.requests) == 17
    assert late_saw_a_report and all(late_saw_a_report), late_saw_a_report


MEDR_SCRIPT = (  # (words in the last message, reply): the patient agent and the judge
    ("The colleague asks for:", "Thyroid function: TSH suppressed."),
    ("List each separate test", '[{"type": "laboratory", "test_name": "TSH", "info_required": "thyroid"}]'),
    ("Is the following test", "Yes"),
    ("Does the predicted diagnosis", "Correct"),
)


def medr_scripted(request: dict, number: int, same_test: bool = False) -> Reply:
    """MedR-Bench's model, agent and judge by the wording of the last message; the model asks for
    another test on each turn, so no two requests of a dialogue are alike (or, with ``same_test``,
    for the same test on every turn, so the agent is asked the same request again and again)."""
    last = request["messages"][-1]["content"]
    reply = next((reply for words, reply in MEDR_SCRIPT if words in last), None)
    if reply is None:
        turn = 1 if same_test else sum(message["role"] == "assistant" for message in request["messages"])
        reply = (
            "### Chain of Thought:\n<step 1> Thyroid.\n"
            f"### Additional Information Required:\n1. Test number {turn}\n### Conclusion:\nGraves disease"
        )
    return Reply(content=reply, hang_s=0.02)


def test_concurrency_answers_both_settings_of_a_dialogue_in_the_pool(run_suites, monkeypatch):
    """The two free-turn settings share one dialogue: the pool answers both (the second's judge
    calls included), so the test loop makes no call of its own, and the leaderboard and the
    request count are a sequential run's."""
    import threading

    from openai_server import OpenAIServer

    from pytest_medbench.models.client import ModelClient

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    callers: list[str] = []
    complete = ModelClient.complete

    def watched(self, *args, **kwargs):
        callers.append(threading.current_thread().name)
        return complete(self, *args, **kwargs)

    monkeypatch.setattr(ModelClient, "complete", watched)
    with OpenAIServer(medr_scripted) as server:
        options = [
            "-m",
            "exam_free_turn or diagnosis_free_turn",
            "--model=openai/m",
            f"--api-base={server.api_base}",
            "--judge-model=openai/judge",
            f"--judge-api-base={server.api_base}",
            "--medbench-no-cache",
        ]
        _, sequential = run_suites(*options, report="sequential.json")
        asked_sequentially, callers[:] = len(server.requests), []
        _, concurrent = run_suites(*options, "--medbench-concurrency=4", report="concurrent.json")
    assert asked_sequentially > 0 and len(server.requests) == 2 * asked_sequentially
    assert callers and "MainThread" not in callers, set(callers)  # the prefetch's, hosted or threads
    assert stable(concurrent) == stable(sequential)
    assert [t["passed"] for t in concurrent["tasks"]] == [t["n"] for t in concurrent["tasks"]]


def test_concurrency_without_a_cache_asks_a_repeated_request_as_often_as_a_sequential_run(
    run_suites, monkeypatch, tmp_path
):
    """--medbench-no-cache in one process keeps no cache at all, so a request that comes up twice
    (here 12 items with one question) is asked twice, as a sequential run asks it."""
    from openai_server import OpenAIServer

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    answer = "The right answer is A: x"
    instances = [{"input": "Question: Which?\nOptions: A: x\tB: y", "output": answer}] * 12
    (folder / "task57_same.json").write_text(json.dumps({"Definition": ["Pick."], "Instances": instances}))
    with OpenAIServer(lambda request, number: Reply(content=answer, hang_s=0.05)) as server:
        options = ["--model=openai/m", f"--api-base={server.api_base}", "--medbench-no-cache"]
        options += [f"--medbench-data={tmp_path / 'data'}", "--medbench-shots=0"]
        run_suites(*options, report="sequential.json")
        assert len(server.requests) == 12
        run_suites(*options, "--medbench-concurrency=4", report="concurrent.json")
    assert len(server.requests) == 24


@pytest.mark.parametrize(("path", "in_flight"), [("hosted", 4), ("hosted", 8), ("pool", 4)])
def test_concurrency_with_a_cache_asks_a_repeated_request_once_as_a_sequential_run(
    run_suites, monkeypatch, tmp_path, path, in_flight
):
    """With a cache file, a request that comes up again (here 12 items with one question) is asked
    once, as a sequential run asks it, the other items reading its answer: a prefetch task that finds
    another task of its process asking the request waits for that answer (claims in the file are by
    process). Its tokens are counted once, and the leaderboards are the same. On both ways the
    prefetch runs: tasks hosted by the HTTP process's reader, and a pool of threads."""
    import threading

    from openai_server import OpenAIServer

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if path == "pool":
        monkeypatch.setattr(
            "pytest_medbench.run.clients.Clients.http_process_of_every_call", lambda self: None
        )
    pool_threads = set()
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    answer = "The right answer is A: x"
    instances = [{"input": "Question: Which?\nOptions: A: x\tB: y", "output": answer}] * 12
    (folder / "task57_same.json").write_text(json.dumps({"Definition": ["Pick."], "Instances": instances}))
    boards = {}
    for concurrency in (1, in_flight):

        def reply(request, number):
            pool_threads.update(
                t.name for t in threading.enumerate() if t.name.startswith("medbench-prefetch")
            )
            return Reply(content=answer, hang_s=0.2)

        with OpenAIServer(reply) as server:
            options = ["--model=openai/m", f"--api-base={server.api_base}", "--medbench-shots=0"]
            options += [f"--medbench-data={tmp_path / 'data'}", f"--medbench-concurrency={concurrency}"]
            cache = tmp_path / f"cache{concurrency}.sqlite3"  # a new file: the first asking is paid for
            _, boards[concurrency] = run_suites(
                *options, "--medbench-cache", str(cache), report=f"{concurrency}.json"
            )
        assert len(server.requests) == 1, concurrency
    sequential, concurrent = (boards[n]["tasks"][0] for n in (1, in_flight))
    for counted in ("tokens", "cache_hits", "reused"):
        assert concurrent[counted] == sequential[counted], counted
    assert bool(pool_threads) == (path == "pool")
    assert stable(boards[in_flight]) == stable(boards[1])


def test_xdist_without_a_cache_asks_a_repeated_request_as_often_as_a_sequential_run(
    run_suites, monkeypatch, tmp_path
):
    """Under -n with no cache file, the workers' scratch file carries an item's (or a shared
    dialogue's) answers to its test, prefetched or not, and nothing across items: a request that two items,
    or two turns of one dialogue, repeat is asked each time, as a sequential run asks it."""
    from functools import partial

    from openai_server import OpenAIServer

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    answer = "The right answer is A: x"
    instances = [{"input": "Question: Which?\nOptions: A: x\tB: y", "output": answer}] * 4
    (folder / "task57_same.json").write_text(json.dumps({"Definition": ["Pick."], "Instances": instances}))
    runs = {  # the free-turn dialogues of the bundled cases, then four MCQA items with one prompt
        "medr": ["-m", "exam_free_turn or diagnosis_free_turn", "--judge-model=openai/judge"],
        "mcqa": [f"--medbench-data={tmp_path / 'data'}", "--medbench-shots=0"],
    }
    asked, boards = {}, {}
    with OpenAIServer(partial(medr_scripted, same_test=True)) as server:
        base = ["--model=openai/m", f"--api-base={server.api_base}", "--medbench-no-cache"]
        base.append(f"--judge-api-base={server.api_base}")
        for name, options in runs.items():
            for way, more in XDIST_WAYS:
                before = len(server.requests)
                _, boards[name, way] = run_suites(*base, *options, *more, report=f"{name}-{way}.json")
                asked[name, way] = [
                    json.dumps(request, sort_keys=True) for request in server.requests[before:]
                ]
    # the agent is asked the same request on turns 1-4 of each dialogue
    assert len(set(asked["medr", "sequential"])) < len(asked["medr", "sequential"])
    assert len(asked["mcqa", "sequential"]) == 4
    for name in runs:  # the same requests, each as many times
        for way, _ in XDIST_WAYS[1:]:
            assert sorted(asked[name, way]) == sorted(asked[name, "sequential"]), (name, way)
            board, sequential = stable(boards[name, way]), stable(boards[name, "sequential"])
            if way == "xdist-one-at-a-time":  # a dialogue's calls are charged to whichever of its two
                for section in ("tasks", "categories"):  # items ran first: only the totals are equal
                    for entry in (*board[section], *sequential[section]):
                        entry.pop("judge_tokens")
            assert board == sequential, (name, way)


# with concurrency, and without: then the two settings of a dialogue, often run by two workers, must
# still share one conversation (before, with no concurrency each worker held its own)
XDIST_WAYS = (
    ("sequential", []),
    ("xdist", ["-n", "2", "--medbench-concurrency=2"]),
    ("xdist-one-at-a-time", ["-n", "2"]),
)


@pytest.mark.parametrize(
    ("epochs", "hang_s", "most_requests"),
    [
        # 17 items selected; 2 in flight when the first test fails
        (1, 0.3, 8),
        # items 1 and 2 take 5 x 0.5 s, then item 1's test fails while items 3 and 4 are in their
        # first epoch; they stop after the epoch in flight (a loaded machine may let them start a
        # second): at most 2 x 5 + 2 x 2 = 14, where finishing every epoch in flight asks 4 x 5 = 20
        (5, 0.5, 14),
    ],
    ids=["drops-the-calls-not-yet-started", "stops-the-items-in-flight-after-their-epoch"],
)
def test_a_test_loop_cut_short_asks_little_more_than_the_calls_in_flight(
    run_suites, monkeypatch, epochs, hang_s, most_requests
):
    """-x stops at the first failing item: the pool drops what it has not started, and an item in
    flight stops after its current epoch, so a run does not ask for every selected item."""
    from openai_server import OpenAIServer, Reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    import time

    with OpenAIServer(lambda request, number: Reply(content="no answer", hang_s=hang_s)) as server:
        result, _ = run_suites(
            "-k",
            "mcqa",
            "-x",
            "--model=openai/wrong",
            f"--api-base={server.api_base}",
            "--medbench-no-cache",
            "--medbench-concurrency=2",
            f"--medbench-epochs={epochs}",
        )
        time.sleep(3)  # long enough for a pool left running to ask every item and epoch
    assert result.ret == 1
    assert len(server.requests) <= most_requests


@pytest.mark.parametrize("stop", ["-x", "-x, pool", "ctrl-c"])
def test_a_stop_ends_the_prefetchs_retries_and_their_backoff(run_suites, monkeypatch, tmp_path, stop):
    """-x, or Ctrl-C, while the prefetch's tasks back off from a 429 that asks for 20 s: the run ends
    once the calls in flight are answered, without their retries. The first item's wrong answer
    comes after 0.5 s (it fails the run under -x); every other call is refused. At most 1 + 4
    requests (the first item's, and one a task of the 4 in flight); before, the 3 retries of each
    were waited out and sent (62 s, 21 requests). "pool": the prefetch in threads, not hosted."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    from openai_server import OpenAIServer, Reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    if stop == "-x, pool":
        monkeypatch.setattr(
            "pytest_medbench.run.clients.Clients.http_process_of_every_call", lambda self: None
        )
    pool_threads = set()

    def answer(request, number):
        pool_threads.update(t.name for t in threading.enumerate() if t.name.startswith("medbench-prefetch"))
        if "number 0?" in request["messages"][-1]["content"]:
            return Reply(content="The right answer is B: 1", hang_s=0.5)
        return Reply(status=429, content="slow down", headers={"Retry-After": "20"})

    data = mcqa_data(tmp_path, count=20)
    options = [f"--medbench-data={data}", "--medbench-shots=0", "--medbench-no-cache"]
    options += ["--medbench-retries=3", "--medbench-concurrency=4"]
    with OpenAIServer(answer) as server:
        options += ["--model=openai/m", f"--api-base={server.api_base}"]
        started = time.monotonic()
        if stop.startswith("-x"):
            result, _ = run_suites(*options, "-x")
            code, output = result.ret, result.stdout.str()
        else:  # a terminal's Ctrl-C, once every task backs off
            command = [sys.executable, "-m", "pytest", str(SUITES), "-p", "no:cacheprovider", "-q", *options]
            run = subprocess.Popen(
                command,
                cwd=tmp_path,
                start_new_session=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            while len(server.requests) < 5 and time.monotonic() - started < 30:
                time.sleep(0.05)
            time.sleep(0.5)
            started = time.monotonic()
            os.killpg(run.pid, signal.SIGINT)
            code, output = run.wait(timeout=120), run.communicate()[0].decode()
        took = time.monotonic() - started
    assert code == (2 if stop == "ctrl-c" else 1), output
    assert took < 10, took
    assert len(server.requests) <= 5
    assert bool(pool_threads) == (stop == "-x, pool")


def test_after_a_stop_a_task_waiting_for_a_siblings_answer_asks_nothing(run_suites, monkeypatch, tmp_path):
    """With a cache file, items 1-11 share one question that is always refused (429, 20 s): one task
    asks it while the others wait for its answer. -x at the first item's wrong answer (0.5 s) ends
    the asking task's call without its retries; the waiting tasks then take the request and must not
    ask it: 2 requests in all (item 0's, and the first asking of the shared one). Before, each waiting
    task asked it once more after the stop."""
    from openai_server import OpenAIServer, Reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    first = {"input": "Question: Which one first?\nOptions: A: x\tB: y", "output": "A"}
    shared = {"input": "Question: Which?\nOptions: A: x\tB: y", "output": "A"}
    (folder / "task57_shared.json").write_text(
        json.dumps({"Definition": ["Pick."], "Instances": [first] + [shared] * 11})
    )

    def answer(request, number):
        if "first?" in request["messages"][-1]["content"]:
            return Reply(content="The right answer is B: y", hang_s=0.5)
        return Reply(status=429, content="slow down", headers={"Retry-After": "20"})

    with OpenAIServer(answer) as server:
        options = [
            "--model=openai/m",
            f"--api-base={server.api_base}",
            f"--medbench-data={tmp_path / 'data'}",
        ]
        options += ["--medbench-shots=0", "--medbench-retries=3", "--medbench-concurrency=4", "-x"]
        result, _ = run_suites(*options)
        time.sleep(0.5)  # long enough for a task left asking to be seen
        asked = len(server.requests)
    assert result.ret == 1, result.stdout.str()
    assert asked == 2


def test_a_stop_ends_the_prefetchs_waits_for_the_rate_limit(run_suites, monkeypatch, tmp_path):
    """-x while prefetch tasks wait for room under --medbench-rpm 2 (a minute's window): they give up
    the wait and make no call, so the run ends at once. The first item's wrong answer comes after
    0.5 s; the first two calls (items 0 and 1) go out at once, items 2 and 3 wait. Without it, the
    run waited about a minute for the window, then made those two calls."""
    import time

    from openai_server import OpenAIServer, Reply

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    def answer(request, number):
        wrong = "number 0?" in request["messages"][-1]["content"]
        return Reply(
            content="The right answer is B: 1" if wrong else "The right answer is A", hang_s=0.5 * wrong
        )

    data = mcqa_data(tmp_path, count=20)
    with OpenAIServer(answer) as server:
        options = ["--model=openai/m", f"--api-base={server.api_base}", f"--medbench-data={data}"]
        options += ["--medbench-shots=0", "--medbench-rpm=2", "--medbench-concurrency=4", "-x"]
        started = time.monotonic()
        result, _ = run_suites(*options)
        took = time.monotonic() - started
    assert result.ret == 1, result.stdout.str()
    assert took < 20, took
    assert len(server.requests) == 2


def test_concurrency_composes_with_xdist_and_asks_each_request_once(run_suites, monkeypatch):
    """Both benchmarks under -n 2 with concurrency: each worker prefetches its share, and the workers
    share one scratch cache whose claims keep any request (a dialogue two settings share, say) from
    being asked twice; the scores equal a sequential run's."""
    from openai_server import OpenAIServer, echo_last_user

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with OpenAIServer(echo_last_user) as server:
        options = ["--model=openai/echo", f"--api-base={server.api_base}", "--medbench-no-cache"]
        _, sequential = run_suites(*options, report="sequential.json")
        asked_sequentially = len(server.requests)
        _, distributed = run_suites(*options, "-n", "2", "--medbench-concurrency=4", report="xdist.json")
    assert asked_sequentially > 0
    assert len(server.requests) == 2 * asked_sequentially
    assert stable(distributed) == stable(sequential)
    # every call is counted once, on the item it was made for, whichever worker made it (a
    # dialogue two settings share is paid by one of them: which one may differ between runs)
    assert [b["tokens"] for b in distributed["benchmarks"]] == [b["tokens"] for b in sequential["benchmarks"]]
    meds = [t["tokens"] for t in distributed["tasks"] if t["benchmark"] == "meds"]
    assert meds == [t["tokens"] for t in sequential["tasks"] if t["benchmark"] == "meds"]
    assert all(tokens["prompt"] > 0 for tokens in meds)


BUILTIN_RUN = """
import sys, pytest
seen = []
class Watch:
    def pytest_sessionfinish(self, session):
        seen.append("litellm" in sys.modules)
for model in sys.argv[2:]:
    pytest.main([sys.argv[1], "-q", "-p", "no:cacheprovider", "--model", model, "--medbench-report",
                 "leaderboard.json"], plugins=[Watch()])
print("LITELLM IMPORTED", seen)
"""


def test_builtin_models_never_import_litellm(tmp_path):
    """litellm costs seconds to import: a run with only built-in models answers
    in-process, so it never loads it."""
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"task": "task57", "id": "0", "output": "The right answer is B"}) + "\n")
    models = ["medbench/oracle", "medbench/baseline", f"replay:{replay}"]
    done = run_python("-c", BUILTIN_RUN, str(SUITES), *models, cwd=tmp_path)
    assert "LITELLM IMPORTED [False, False, False]" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]


FREEZE_RUN = """
import gc, sys, pytest

class Watch:
    def pytest_runtest_call(self, item):
        if not hasattr(self, "during"):  # the first test's: get_freeze_count walks what is frozen
            self.during = gc.get_freeze_count() > 0

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config):
        self.at_end, self.last_passes = gc.get_freeze_count() > 0, []
        gc.callbacks.append(self.full_pass)

    def full_pass(self, phase, info):  # pytest's last full collections come after unconfigure
        if phase == "start" and info["generation"] == 2:
            self.last_passes.append(gc.get_freeze_count() > 0)

for limit in sys.argv[3:]:
    watch = Watch()
    pytest.main([sys.argv[1], "-q", "-p", "no:cacheprovider", "--model", "medbench/oracle", "--medbench-data",
                 sys.argv[2], "--medbench-limit", limit], plugins=[watch])
    gc.callbacks.remove(watch.full_pass)
    passes = "frozen" if watch.last_passes and all(watch.last_passes) else watch.last_passes
    print("FROZEN DURING", limit, watch.during, "AT END", watch.at_end, "LAST PASSES", passes,
          "AFTER", gc.get_freeze_count() > 0)
"""


def test_runs_spare_pytests_last_garbage_collections_and_give_everything_back(tmp_path):
    """From 1,000 items on, the loaded items are frozen before the first test (so the collector's
    full passes while the tests run do not walk them). Every run, once its tests are done, is
    collected once and frozen before pytest's five last full collections (they would each walk it
    all), and everything is given back to the collector when pytest returns: a program that goes on
    after ``pytest.main()`` keeps nothing it cannot free."""
    from conftest import mcqa_data

    data = mcqa_data(tmp_path, 1000)
    done = run_python("-c", FREEZE_RUN, str(SUITES), str(data), "500", "1000", cwd=tmp_path)
    expected = "FROZEN DURING 500 False AT END True LAST PASSES frozen AFTER False"
    assert expected in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]
    assert "FROZEN DURING 1000 True AT END True LAST PASSES frozen AFTER False" in done.stdout


AT_EXIT = """
import atexit, gc
atexit.register(lambda: print("FROZEN AT EXIT", gc.get_freeze_count() > 0))
"""


def test_the_pytest_command_leaves_what_it_froze_frozen_for_the_exit(tmp_path):
    """The ``pytest`` command's process ends with the run: what was frozen stays frozen, so the
    interpreter's last collection does not walk and free it all on the way out (1.9 s after 15,000
    items). The same run through ``pytest.main()`` gives it back (the test above)."""
    (tmp_path / "at_exit.py").write_text(AT_EXIT)
    options = ["-q", "-p", "no:cacheprovider", "-p", "at_exit", "--model", "medbench/oracle", "-k", "task57"]
    done = run_python("-m", "pytest", str(SUITES), *options, cwd=tmp_path, path=(tmp_path,))
    assert "FROZEN AT EXIT True" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


class _Cycle:
    pass


def test_a_run_inside_a_test_freezes_nothing(pytester):
    """An in-process pytester run freezes nothing: its freeze would take the outer run's objects too,
    and under the pytest command nothing gives them back, so whatever was alive then and dies later
    (here a cycle) would never be freed."""
    import gc
    import weakref

    class Watch:
        @pytest.hookimpl(trylast=True)
        def pytest_unconfigure(self, config):
            self.frozen = gc.get_freeze_count()

    pytester.makepyfile("def test_a(medbench):\n    pass\n")
    cycle = _Cycle()
    cycle.me, ref = cycle, weakref.ref(cycle)
    before, watch = gc.get_freeze_count(), Watch()
    pytester.inline_run("-p", "no:cacheprovider", plugins=[watch]).assertoutcome(passed=1)
    assert watch.frozen == before
    del cycle
    gc.collect()
    assert ref() is None


def test_only_metrics_no_item_could_score_are_not_judged(run_suites):
    """HoC's per-item exact_match stands beside its corpus F1: it is scored, so it is never 'not judged'."""
    _, board = run_suites("--model", "medbench/oracle", "-k", "task106 or oracle_diagnosis")
    entries = {task["task"]: task for task in board["tasks"]}
    assert "not_judged" not in entries["task106"]
    assert "factuality" in entries["oracle_diagnosis"]["not_judged"]  # no judge model: not judged
