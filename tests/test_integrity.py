"""Run integrity: a run never reports a number it did not compute, and never writes a secret.

See docs/reliability.md; each test here is cited there for the behaviour it proves.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply, echo_last_user

from conftest import FIXTURES, SUITES
from pytest_medbench.models.cache import CacheReadOnlyWarning, ResponseCache

FIXTURE_ITEMS = 99  # README: the bundled fixtures are 99 items (MedS-Bench and MedR-Bench)


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on PYTHONPATH (xdist workers inherit it) for a throwaway ``-p`` plugin."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))
    return folder


def run_interrupted(pytester, tmp_path, *args: str) -> tuple[pytest.RunResult, dict | None]:
    """The suites run in-process by a plugin that raises KeyboardInterrupt (pytester would re-raise it)."""
    report = tmp_path / "leaderboard.json"
    result = pytester.runpytest(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        "--medbench-report",
        str(report),
        "--medbench-no-cache",
        *args,
        no_reraise_ctrlc=True,
    )
    return result, json.loads(report.read_text()) if report.exists() else None


@pytest.mark.parametrize("gate", ["medr.errors<=0", "meds.errors<=0"], ids=["holds", "never-computed"])
def test_a_run_stopped_by_maxfail_is_incomplete_and_fails_its_gate(run_suites, tmp_path, gate):
    samples = tmp_path / "samples.jsonl"
    result, board = run_suites("--maxfail=1", "--medbench-gate", gate, "--medbench-samples", str(samples))
    lines = read_lines(samples)
    done = [line for line in lines if not line.get("missing")]
    missing = [line for line in lines if line.get("missing")]
    assert len(done) >= 1 and len(done) + len(missing) == FIXTURE_ITEMS
    assert board["run"]["complete"] is False and board["run"]["missing"] == len(missing)
    assert {line["nodeid"] for line in missing}.isdisjoint(line["nodeid"] for line in done)
    assert all(line["nodeid"] and line["id"] for line in missing)
    result.stdout.fnmatch_lines([f"*INCOMPLETE: {len(done)} of {FIXTURE_ITEMS} items*"])
    assert "medbench verdict: FAIL" in result.stdout.lines[-1] and "INCOMPLETE" in result.stdout.lines[-1]
    assert result.ret == 1


OWN_TESTS = """
import pytest

@pytest.mark.parametrize("i", range(6))
def test_case(i, medbench):
    medbench.record("own", {"accuracy": i != 1})
    assert i != 1  # the second fails: under -x the four after it never run
"""


def test_tests_of_your_own_stopped_by_x_leave_the_run_incomplete_and_fail_its_gate(pytester, tmp_path):
    """The unrun tests are the user's own (medbench.record, whose task is known only once they run) and
    then benchmark items: each selected item that never ran counts, whatever it is."""
    pytester.makepyfile(test_own=OWN_TESTS)
    report, samples = tmp_path / "leaderboard.json", tmp_path / "samples.jsonl"
    result = pytester.runpytest(
        *("test_own.py", str(SUITES), "-k", "test_case or task57", "-x", "-p", "no:cacheprovider"),
        *("--medbench-no-cache", "--medbench-gate", "custom.own.accuracy>=50"),
        *("--medbench-report", str(report), "--medbench-samples", str(samples)),
    )
    board = json.loads(report.read_text())
    (task,) = board["tasks"]
    assert (task["task"], task["n"], task["metrics"]["accuracy"]["value"]) == (
        "own",
        2,
        50.0,
    )  # the gate holds
    # 11 selected (6 own tests, 5 task57 items), 2 ran: 4 own tests and 5 benchmark items did not
    assert board["run"]["complete"] is False and board["run"]["missing"] == 9
    missing = [line for line in read_lines(samples) if line.get("missing")]
    assert [line["id"] for line in missing] == ["0", "1", "2", "3", "4"]  # the benchmark items, listed
    line = "INCOMPLETE: 2 of 11 items (the samples file lists 5 of the missing ids)"
    result.stdout.fnmatch_lines([line])
    assert result.outlines[-1] == f"medbench verdict: FAIL: {line}"
    assert result.ret == 1


def test_a_complete_run_says_so(run_suites):
    result, board = run_suites(
        "-k", "task57", "--model", "medbench/oracle", "--medbench-gate", "meds.errors<=0"
    )
    assert board["run"]["complete"] is True and board["run"]["missing"] == 0
    assert "INCOMPLETE" not in result.stdout.str() and result.ret == 0


def test_ctrl_c_before_any_result_leaves_the_earlier_samples_file_whole(pytester, tmp_path, plugin_dir):
    (plugin_dir / "interrupt_first.py").write_text(
        "def pytest_runtest_setup(item):\n    raise KeyboardInterrupt\n"
    )
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"earlier": "run"}\n')
    result, board = run_interrupted(
        pytester, tmp_path, "-p", "interrupt_first", "--medbench-samples", str(samples)
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert samples.read_text() == '{"earlier": "run"}\n' and board is None


def test_ctrl_c_mid_run_marks_the_leaderboard_incomplete(pytester, tmp_path, plugin_dir):
    (plugin_dir / "interrupt_later.py").write_text(
        "seen = []\n"
        "def pytest_runtest_setup(item):\n"
        "    seen.append(item)\n"
        "    if len(seen) == 11:\n"
        "        raise KeyboardInterrupt\n"
    )
    result, board = run_interrupted(
        pytester, tmp_path, "-p", "interrupt_later", "--medbench-gate", "medr.errors<=0"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert board["run"]["complete"] is False and board["run"]["missing"] == FIXTURE_ITEMS - 10
    assert sum(task["n"] for task in board["tasks"]) == 10
    result.stdout.fnmatch_lines([f"*INCOMPLETE: 10 of {FIXTURE_ITEMS} items*", "medbench verdict: FAIL*"])


def test_a_crashed_workers_item_is_an_error_of_kind_crash(pytester, tmp_path, plugin_dir):
    (plugin_dir / "crash_one.py").write_text(
        "import os\n"
        "def pytest_runtest_call(item):\n"
        "    if item.nodeid.endswith('[mcqa-task57_medqa_usmle-3]'):\n"
        "        os._exit(1)\n"
    )
    samples, report = tmp_path / "samples.jsonl", tmp_path / "leaderboard.json"
    # a subprocess: xdist hands its workers the sys.path the outer pytest started with
    pytester.runpytest_subprocess(
        str(SUITES),
        *("-p", "no:cacheprovider", "-p", "crash_one", "-n", "2", "-k", "task57", "--medbench-no-cache"),
        *("--medbench-samples", str(samples), "--medbench-report", str(report)),
    )
    (crashed,) = [line for line in read_lines(samples) if line["error"]]
    assert crashed["id"] == "3" and crashed["error"]["kind"] == "crash"
    assert "crashed" in crashed["error"]["message"]
    board = json.loads(report.read_text())
    (task,) = board["tasks"]
    assert task["errors"] == 1 and task["n"] == 5
    assert board["run"]["complete"] is True


ROUTER_LITERAL = "rk-literal-4b1d9e77c2"
ROUTER_ENV = "gw-cred-8a6f0c3d51"  # in a variable whose name says nothing of a key
URL_PASSWORD = "pw-9e2c7a41f0"


@pytest.mark.parametrize("source", ["router_literal", "router_env", "url_userinfo"])
def test_every_secret_the_run_resolves_is_masked_in_every_output(run_suites, tmp_path, monkeypatch, source):
    monkeypatch.setenv("GATEWAY_ROUTE", ROUTER_ENV)
    secret = {"router_literal": ROUTER_LITERAL, "router_env": ROUTER_ENV, "url_userinfo": URL_PASSWORD}[
        source
    ]

    def leaky(request, number):
        if source == "url_userinfo":
            return Reply(drop=True)  # the transport's error names the URL it could not reach
        return Reply(status=401, content=f"Incorrect API key provided: {secret}")

    outputs = {name: tmp_path / name for name in ("board.json", "samples.jsonl", "page.html", "junit.xml")}
    with OpenAIServer(leaky) as server:
        if source == "url_userinfo":
            base = server.api_base.replace("http://", f"http://alice:{URL_PASSWORD}@")
            target = ["--model", "openai/m", "--api-base", base]
        else:
            key = ROUTER_LITERAL if source == "router_literal" else "os.environ/GATEWAY_ROUTE"
            router = tmp_path / "router.yaml"
            router.write_text(
                "model_list:\n  - model_name: m\n    litellm_params:\n"
                f"      {{model: openai/m, api_base: '{server.api_base}', api_key: '{key}'}}\n"
            )
            target = ["--model-router", str(router), "--model", "m"]
        result, board = run_suites(
            *("-k", "task57", *target, "--medbench-retries", "0", "--medbench-samples"),
            *(str(outputs["samples.jsonl"]), "--medbench-html", str(outputs["page.html"])),
            *("--junitxml", str(outputs["junit.xml"])),
            report="board.json",
        )
    assert server.requests  # the model was asked, and failed
    terminal = result.stdout.str() + result.stderr.str()
    for name, path in outputs.items():
        text = path.read_text(encoding="utf-8")
        assert "error" in text, name  # the error is reported...
        assert secret not in text, name  # ...with the secret masked
    assert "***" in outputs["samples.jsonl"].read_text() and secret not in terminal
    if source == "url_userinfo":
        assert board["run"]["model"]["api_base"] == server.api_base


def test_one_task_id_in_two_files_is_one_data_error_naming_both(run_suites, tmp_path):
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    task57 = (FIXTURES / "meds-bench" / "MCQA" / "task57_medqa_usmle.jsonl").read_text(encoding="utf-8")
    (folder / "task57_medqa_usmle.jsonl").write_text(task57, encoding="utf-8")
    (folder / "task57_medqa_usmle_v2.json").write_text(task57, encoding="utf-8")
    pubmedqa = FIXTURES / "meds-bench" / "MCQA" / "task123_pubmedqa.json"
    (folder / pubmedqa.name).write_bytes(pubmedqa.read_bytes())
    result, board = run_suites("--medbench-data", str(tmp_path / "data"), "--model", "medbench/oracle")
    first, second = folder / "task57_medqa_usmle.jsonl", folder / "task57_medqa_usmle_v2.json"
    result.stdout.fnmatch_lines([f"*data error: {first}*task id task57 is also in {second}*"])
    tasks = {task["task"]: task for task in board["tasks"]}
    assert "task57" not in tasks  # neither copy is scored: which one is right is the user's call
    assert tasks["task57_medqa_usmle"]["errors"] == 1 and tasks["task57_medqa_usmle"]["n"] == 1
    assert tasks["task123"]["n"] == len(json.loads(pubmedqa.read_text(encoding="utf-8"))["Instances"])


@pytest.mark.parametrize("suite", ["meds", "medr"])
def test_a_file_nested_5000_levels_deep_is_a_load_error_naming_it(run_suites, tmp_path, suite):
    data = tmp_path / "data"
    deep = "[" * 5000 + "]" * 5000
    if suite == "meds":
        path = data / "meds-bench" / "MCQA" / "task122_deep.json"
        good = FIXTURES / "meds-bench" / "MCQA" / "task123_pubmedqa.json"
        document = '{"Definition": ["x"], "Instances": ' + deep + "}"
    else:
        path = data / "medrbench" / "diagnosis_deep.json"
        good = FIXTURES / "medrbench" / "diagnosis_fixture_cases.json"
        document = '{"PMC1": {"generate_case": {"case_summary": ' + deep + "}}}"
    path.parent.mkdir(parents=True)
    path.write_text(document)
    (path.parent / good.name).write_bytes(good.read_bytes())
    result, _ = run_suites(
        "--medbench-data", str(data), "--model", "medbench/oracle", "--medbench-scoring", "strict"
    )
    result.stdout.fnmatch_lines([f"*{path}*nested too deeply*"])
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1 and outcomes["passed"] >= 1  # the valid file still ran
    assert f"{path.stem}-load_error" in result.stdout.str()


@pytest.mark.parametrize(
    "mode", [["--medbench-cache", "CACHE"], ["--medbench-no-cache"], ["-n", "2", "--medbench-cache", "CACHE"]]
)
def test_a_lone_surrogate_from_the_model_is_replaced_and_the_answer_kept(run_suites, tmp_path, mode):
    def half_emoji(request, number):
        return Reply(content="The answer is A \ud83d")  # sent as the JSON escape "\ud83d", half a pair

    samples = tmp_path / "samples.jsonl"
    options = [str(tmp_path / "cache.sqlite3") if arg == "CACHE" else arg for arg in mode]
    with OpenAIServer(half_emoji) as server:
        result, board = run_suites(
            *("-k", "task57", "--model", "openai/m", "--api-base", server.api_base),
            *("--medbench-samples", str(samples), *options),
        )
    lines = read_lines(samples)
    assert len(lines) == 5 and all(line["error"] is None for line in lines)
    assert {line["output"] for line in lines} == {"The answer is A \ufffd"}
    assert board["tasks"][0]["errors"] == 0 and "INTERNALERROR" not in result.stdout.str()
    if "--medbench-no-cache" not in options:
        with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
            assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 5


def _truncated(path: Path) -> None:
    cache = ResponseCache(path)
    for number in range(300):
        cache.put(f"k{number}", "m", {"text": "x" * 200})
    cache.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CORRUPT_CACHES = {
    "truncated": _truncated,
    "garbage": lambda path: path.write_bytes(b"this is not a database at all" * 100),
    "directory": lambda path: path.mkdir(),
}


@pytest.mark.parametrize("damage", sorted(CORRUPT_CACHES))
def test_an_unusable_cache_is_one_usage_error_naming_the_file_and_the_ways_out(pytester, tmp_path, damage):
    cache = tmp_path / "cache.sqlite3"
    CORRUPT_CACHES[damage](cache)
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--medbench-cache", str(cache))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--medbench-cache {cache}: not a usable SQLite cache*"])
    assert "Delete the file" in result.stderr.str() and "--medbench-no-cache" in result.stderr.str()
    assert "passed" not in result.stdout.str() and "failed" not in result.stdout.str()


def test_a_read_only_cache_warns_once_and_keeps_answers_in_memory(tmp_path):
    path = tmp_path / "cache.sqlite3"
    writable = ResponseCache(path, claims=True)
    writable.put("old", "m", {"text": "earlier"})
    writable.close()
    cache = ResponseCache(path, claims=True)
    cache._db.execute("PRAGMA query_only = ON")  # stands for a file this process may not write
    with pytest.warns(CacheReadOnlyWarning, match=str(path)) as caught:
        assert cache.acquire("new", ttl_s=60) is None  # no claim can be taken: the caller asks
        cache.put("new", "m", {"text": "paid for"})
        cache.put("newer", "m", {"text": "paid for too"})
        cache.release("new")
    assert len(caught) == 1
    assert cache.get("new") == {"text": "paid for"} and cache.get("newer") == {"text": "paid for too"}
    assert cache.get("old") == {"text": "earlier"}


@pytest.mark.parametrize("flag", ["--medbench-report", "--medbench-html", "--medbench-samples"])
@pytest.mark.parametrize("where", ["directory", "under_a_file"])
def test_an_output_path_that_cannot_be_written_is_a_usage_error_at_once(pytester, tmp_path, flag, where):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    target = tmp_path if where == "directory" else blocker / "out" / "board.json"
    started = time.perf_counter()
    result = pytester.runpytest(
        str(SUITES), "-p", "no:cacheprovider", "--medbench-no-cache", flag, str(target)
    )
    assert time.perf_counter() - started < 1.0
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    reason = "is a directory" if where == "directory" else f"{blocker} is a file, not a directory"
    result.stderr.fnmatch_lines([f"*{flag} {target}: {reason}*"])


def test_a_zombie_workers_claim_is_taken_over_within_seconds(tmp_path):
    """A killed xdist worker stays a zombie while the controller lives: kill(pid, 0) still finds it."""
    host = socket.gethostname()
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{killed.pid}/stat")
    while stat.read_text().rpartition(")")[2].split()[0] != "Z":  # see proc(5): the state after "(comm)"
        time.sleep(0.01)  # exited, not yet reaped (no wait() until the end): a zombie
    try:
        crashed = ResponseCache(tmp_path / "cache.sqlite3", claims=True)
        crashed.owner = f"{host}:{killed.pid}"
        assert crashed.acquire("k", ttl_s=600) is None
        got: list = []
        waiter = ResponseCache(tmp_path / "cache.sqlite3", claims=True)
        thread = threading.Thread(target=lambda: got.append(waiter.acquire("k", ttl_s=600)), daemon=True)
        thread.start()
        thread.join(3)
        assert not thread.is_alive() and got == [None]  # the claim is the waiter's now
    finally:
        killed.wait()


def test_two_runs_sharing_a_cache_ask_each_request_once(tmp_path):
    def slow(request, number):
        time.sleep(0.5)
        return echo_last_user(request, number)

    cache = tmp_path / "cache.sqlite3"
    with OpenAIServer(slow) as server:
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(SUITES),
            "-p",
            "no:cacheprovider",
            "-q",
            "-k",
            "task57",
        ]
        command += ["--model", "openai/m", "--api-base", server.api_base, "--medbench-cache", str(cache)]
        runs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL) for _ in range(2)]
        codes = [run.wait(timeout=120) for run in runs]
    assert codes == [1, 1]  # echo answers are wrong answers: each run ran, nothing else failed
    prompts = [request["messages"][-1]["content"] for request in server.requests]
    assert len(prompts) == len(set(prompts)) == 5  # task57's five questions, each asked once


def serving(model: str, fingerprint: str):
    """A responder that reports serving ``model`` (the ``model`` field of an OpenAI answer)."""

    def respond(request, number):
        body = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "system_fingerprint": fingerprint,
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "A"}}
            ],
        }
        return Reply(body=body)

    return respond


def test_reused_answers_say_where_they_came_from_and_another_endpoint_is_warned_of(run_suites, tmp_path):
    common = ("-k", "task57", "--model", "openai/m")
    with OpenAIServer(serving("model-a", "fp_a")) as first:
        _, before = run_suites(*common, "--api-base", first.api_base, report="first.json")
    assert before["run"]["cache"]["reused"] == 0 and before["run"]["cache"]["served_models"] == ["model-a"]
    with sqlite3.connect(tmp_path / "cache.sqlite3") as db:
        stored = [json.loads(row[0]) for row in db.execute("SELECT response FROM responses")]
    assert len(stored) == 5
    assert all(
        (answer["run_id"], answer["served_model"], answer["system_fingerprint"], answer["api_base"])
        == (before["run"]["cache"]["run"], "model-a", "fp_a", first.api_base)
        for answer in stored
    )

    with OpenAIServer(serving("model-b", "fp_b")) as second:
        result, after = run_suites(*common, "--api-base", second.api_base, report="second.json")
    assert second.requests == []  # every answer came from the cache...
    (origin,) = after["run"]["cache"]["runs"]  # ...and the leaderboard says from where
    assert after["run"]["cache"]["reused"] == 5 and origin["answers"] == 5
    assert (origin["id"], origin["api_base"], origin["served_model"]) == (
        before["run"]["cache"]["run"],
        first.api_base,
        "model-a",
    )
    assert origin["date"][:10] == before["run"]["started"][:10]
    result.stdout.fnmatch_lines(
        [f"WARNING: 5 cached answers reused from run *came from another endpoint {first.api_base}*"]
    )

    with OpenAIServer(serving("model-b", "fp_b")) as third:
        _, revised = run_suites(
            *common, "--api-base", third.api_base, "--model-revision", "b", report="3.json"
        )
    assert len(third.requests) == 5 and revised["run"]["cache"]["reused"] == 0  # a revision is asked afresh
    assert revised["run"]["model"]["revision"] == "b"


def test_an_items_attempts_are_one_budget_across_prefetch_and_test(run_suites):
    with OpenAIServer(lambda request, number: Reply(status=500, content="down")) as server:
        _, board = run_suites(
            *("-k", "task57", "--model", "openai/m", "--api-base", server.api_base),
            *("--medbench-concurrency", "4", "--medbench-retries", "1", "--medbench-backoff", "0.01"),
        )
    assert board["tasks"][0]["errors"] == 5
    assert len(server.requests) == 5 * 2  # each item: one try and one retry, in the prefetch only
