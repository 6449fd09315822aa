"""Faults and bad input: nothing is lost, duplicated, mis-scored or leaked.

See docs/reliability.md for the table of faults, what the user sees, and which test proves it.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from openai_server import FaultInjector, OpenAIServer, Reply, echo_last_user

from conftest import FIXTURES, SUITES, mcqa_data
from pytest_medbench.models.cache import ResponseCache

ITEMS = 200
CAUSES = {"rate_limit", "server", "timeout", "connection", "empty", "content_filter"}


def read_samples(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_200_items_at_20_percent_faults(run_suites, tmp_path, monkeypatch, workers):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    data = mcqa_data(tmp_path)
    cache = tmp_path / "cache.sqlite3"
    common = [
        "--medbench-data",
        str(data),
        "--model",
        "openai/flaky",
        "--medbench-cache",
        str(cache),
        "--medbench-timeout",
        "1",
        "--medbench-retries",
        "2",
        "--medbench-backoff",
        "0.01",
        "--medbench-shots",
        "0",
        *workers,
    ]
    faults = FaultInjector(0.2, hang_s=1.5)
    samples = tmp_path / "first.jsonl"
    with OpenAIServer(faults) as server:
        _, board = run_suites(*common, "--api-base", server.api_base, "--medbench-samples", str(samples))
    assert set(faults.injected) >= {
        "rate_limit",
        "server_500",
        "hang",
        "drop",
        "malformed_json",
        "empty",
        "refusal",
    }

    lines = read_samples(samples)
    assert len(lines) == ITEMS and len({line["id"] for line in lines}) == ITEMS  # none lost, none twice
    failed = [line for line in lines if line["error"]]
    assert all(line["error"]["kind"] in CAUSES and line["error"]["message"] for line in failed)
    assert all(line["scores"] == {"accuracy": 0.0} for line in lines if not line["error"])  # echo answers
    (task,) = board["tasks"]
    assert (task["n"], task["errors"]) == (ITEMS, len(failed)) and 0 < len(failed) < ITEMS // 4
    assert task["metrics"]["accuracy"]["n"] == ITEMS - len(failed)
    with sqlite3.connect(cache) as db:
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == ITEMS - len(
            failed
        )  # no error cached

    with OpenAIServer() as server:
        _, again = run_suites(*common, "--api-base", server.api_base, report="again.json")
    assert sorted(json.loads(json.dumps(r["messages"]))[-1]["content"] for r in server.requests) == sorted(
        line["messages"][-1]["content"] for line in failed
    )  # the rerun asked only for what had failed
    assert again["tasks"][0]["errors"] == 0 and again["tasks"][0]["cache_hits"] == ITEMS - len(failed)


def _writer(path: str, worker: int) -> None:
    cache = ResponseCache(Path(path))
    for n in range(300):
        cache.put(f"{worker}-{n}", "model", {"text": f"answer {worker} {n}" * 20})
    cache.close()


def test_concurrent_writers_never_corrupt_the_cache(tmp_path):
    path = str(tmp_path / "cache.sqlite3")
    processes = [
        multiprocessing.get_context("spawn").Process(target=_writer, args=(path, w)) for w in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 1200


GOOD = json.loads((FIXTURES / "meds-bench" / "MCQA" / "task57_medqa_usmle.jsonl").read_text(encoding="utf-8"))
BAD_MEDS = {
    "truncated": (b'{"Definition": ["x"], "Instances": [{"input": "a"', "line 1 column 50: invalid JSON"),
    "wrong_type": (
        json.dumps({"Definition": "x", "Instances": []}).encode(),
        "/Definition: 'x' is not of type 'array'",
    ),
    "missing_field": (
        json.dumps({"Definition": ["x"], "Instances": [{"input": "a"}]}).encode(),
        "/Instances/0: 'output' is a required property",
    ),
    "not_utf8": (b'{"Definition": ["\xff\xfe"], "Instances": []}', "byte 17: not valid UTF-8"),
    "duplicate_ids": (
        json.dumps(
            {
                "Definition": ["x"],
                "Instances": [
                    {"id": "a", "input": "q", "output": "o"},
                    {"id": "a", "input": "r", "output": "p"},
                ],
            }
        ).encode(),
        "/Instances/1/id: duplicate instance id 'a'",
    ),
    "empty": (b"", ": the file is empty"),
}


def test_a_release_the_file_refuses_leaves_the_request_free_to_ask_again(tmp_path, monkeypatch):
    """A task of this process whose release fails on the file (locked past the busy timeout, full)
    does not keep the request taken: the next task to ask it takes the claim, where it would
    otherwise wait for an answer that never comes."""
    import threading

    cache = ResponseCache(tmp_path / "cache.sqlite3", claims=True)
    assert cache.acquire("k", ttl_s=60) is None  # this task asks it
    write = cache._write

    def locked(sql: str, params: tuple) -> int:
        if sql.startswith("DELETE"):
            raise sqlite3.OperationalError("database is locked")
        return write(sql, params)

    monkeypatch.setattr(cache, "_write", locked)
    with pytest.raises(sqlite3.OperationalError):
        cache.release("k")
    monkeypatch.setattr(cache, "_write", write)
    got: list = []
    thread = threading.Thread(target=lambda: got.append(cache.acquire("k", ttl_s=60)), daemon=True)
    thread.start()
    thread.join(5)
    assert got == [None]  # the claim is the next task's (the file's is this process's own)


def test_a_claimed_request_waits_for_its_answer_and_a_dead_owners_claim_is_taken(tmp_path):
    """Workers sharing a cache: one waits for the answer another is fetching; a claim left by a
    killed worker does not block anyone."""
    import socket
    import subprocess
    import sys
    import threading

    path = tmp_path / "cache.sqlite3"
    host = socket.gethostname()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as live:
        fetching = ResponseCache(path, claims=True)
        fetching.owner = f"{host}:{live.pid}"  # stands for another worker, alive
        assert fetching.acquire("k1", ttl_s=60) is None  # the claim is its own
        waiter = ResponseCache(path, claims=True)
        got: list = []
        thread = threading.Thread(target=lambda: got.append(waiter.acquire("k1", ttl_s=60)))
        thread.start()
        thread.join(0.3)
        assert thread.is_alive()  # still waiting: the owner lives
        fetching.put("k1", "m", {"text": "answer"})
        fetching.release("k1")
        thread.join(5)
        live.kill()
    assert got == [{"text": "answer"}]

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    crashed = ResponseCache(path, claims=True)
    crashed.owner = f"{host}:{int(dead.stdout)}"  # a worker that claimed and was killed
    assert crashed.acquire("k2", ttl_s=600) is None
    assert ResponseCache(path, claims=True).acquire("k2", ttl_s=600) is None  # taken over at once


@pytest.mark.parametrize("fault", sorted(BAD_MEDS))
def test_bad_meds_files_give_one_clear_error_and_the_rest_runs(run_suites, tmp_path, fault):
    content, message = BAD_MEDS[fault]
    folder = tmp_path / "data" / "meds-bench" / "MCQA"
    folder.mkdir(parents=True)
    (folder / "task57_medqa.json").write_text(json.dumps(GOOD))
    (folder / "task122_broken.json").write_bytes(content)
    result, board = run_suites("--medbench-data", str(tmp_path / "data"), "--model", "medbench/oracle")
    result.stdout.fnmatch_lines([f"*data error: {folder / 'task122_broken.json'}*{message}*"])
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["task57"]["passed"] == 5 and tasks["task122_broken"]["errors"] == 1
    assert result.parseoutcomes() == {"passed": 5, "failed": 1, "skipped": 1}  # no MedR folder: empty set


BAD_MEDR = {
    "missing_summary": (
        {"PMC1": {"generate_case": {"diagnosis_results": "x"}}},
        "case PMC1 /generate_case: 'case_summary'",
    ),
    "wrong_type": (
        {"PMC1": {"generate_case": {"case_summary": 5, "diagnosis_results": "x"}}},
        "case PMC1 /generate_case/case_summary: 5 is not of type 'string'",
    ),
    "no_answer": (
        {"PMC1": {"generate_case": {"case_summary": "- Ancillary Tests: x"}}},
        "case PMC1: generate_case.diagnosis_results is missing or empty",
    ),
    "not_an_object": ([1, 2], "at /: expected an object keyed by case id"),
}


@pytest.mark.parametrize("fault", sorted(BAD_MEDR))
def test_bad_medr_cases_are_named_and_the_valid_cases_run(run_suites, tmp_path, fault):
    document, message = BAD_MEDR[fault]
    folder = tmp_path / "data" / "medrbench"
    folder.mkdir(parents=True)
    good = json.loads((FIXTURES / "medrbench" / "diagnosis_fixture_cases.json").read_text(encoding="utf-8"))
    (folder / "diagnosis_good.json").write_text(json.dumps({"PMC90000001": good["PMC90000001"]}))
    (folder / "diagnosis_zbroken.json").write_text(json.dumps(document))
    result, _ = run_suites("--medbench-data", str(tmp_path / "data"), "--model", "medbench/oracle")
    result.stdout.fnmatch_lines([f"*{folder / 'diagnosis_zbroken.json'}*{message}*"])
    assert result.parseoutcomes() == {"passed": 5, "failed": 1, "skipped": 1}  # no MedS folder: empty set


def test_an_empty_benchmark_folder_runs_nothing_and_says_so(pytester, tmp_path):
    (tmp_path / "data" / "meds-bench").mkdir(parents=True)
    result = pytester.runpytest(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        "-rs",
        "--medbench-no-cache",
        "--medbench-data",
        str(tmp_path / "data"),
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED*no MedR-Bench case files under*", "SKIPPED*no MedS-Bench task files under*"]
    )
    assert result.ret == 0


SENTINEL = "sk-sentinel-7f3a9c1e5b2d4f60"


def test_api_keys_are_never_written_anywhere(run_suites, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)

    def leaky(request, number):
        question = request["messages"][-1]["content"]
        if "scurvy" in question:
            return Reply(status=400, content=f"invalid request for key {SENTINEL}")
        if "heparin" in question:
            return Reply(status=500, content=f"upstream failed with key {SENTINEL}")
        return echo_last_user(request, number)

    outputs = {
        name: tmp_path / name for name in ("board.json", "samples.jsonl", "cache.sqlite3", "junit.xml")
    }
    with OpenAIServer(leaky) as server:
        result, _ = run_suites(
            "-k",
            "task57",
            "--model",
            "openai/m",
            "--api-base",
            server.api_base,
            "--medbench-backoff",
            "0.01",
            "--medbench-samples",
            str(outputs["samples.jsonl"]),
            "--medbench-cache",
            str(outputs["cache.sqlite3"]),
            "--junitxml",
            str(outputs["junit.xml"]),
            report="board.json",
        )
    assert all(request.get("messages") for request in server.requests)
    written = b"".join(path.read_bytes() for path in outputs.values() if path.exists())
    written += (
        Path(tmp_path / "board.json").read_bytes()
        + result.stdout.str().encode()
        + result.stderr.str().encode()
    )
    assert b"upstream failed with key" in written  # the error itself is reported...
    assert SENTINEL.encode() not in written  # ...with the key masked


# a key whose first 7 characters appear nowhere else: a text cut before it is masked shows them
CUT_KEY = "sk-Qx7vWp2-cut-9d41e0b6a3"


@pytest.fixture
def cut_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CUT_KEY)
    return CUT_KEY


@pytest.mark.parametrize("offset", [10, len(CUT_KEY) - 1], ids=["middle", "all-but-one"])
def test_a_text_cut_short_for_output_is_masked_before_the_cut(cut_key, offset):
    """A non-JSON error body is shown by its first 300 characters, a failure message's parsed answer
    and reference by theirs, a record's parsed answer by its first 200: with a key across the cut,
    its start would show had the text been cut before it was masked."""
    from pytest_medbench.data.meds_tasks import TASKS
    from pytest_medbench.metrics.meds import score_meds
    from pytest_medbench.models.transport import _error_text
    from pytest_medbench.report.records import ItemRecord

    text = "x" * (300 - offset) + cut_key + " and more"  # the 300th character falls inside the key
    body = _error_text(502, text.encode())  # not JSON: the body itself is the message
    record = ItemRecord("meds", "task52", "rationale", "1", parsed={"answer": text}, reference=text)
    answer = score_meds(TASKS["task1"], text[100:], "a reference").parsed["answer"]  # cut at 200
    for shown in (body, record.failure_message(), answer):
        assert cut_key[:7] not in shown
        assert "x" * 20 in shown  # the text itself is still shown


def test_a_password_in_a_judge_url_is_not_in_the_header(pytester):
    """``--judge-model MODEL@URL``: the header names the judge and its host, not ``user:pw@``."""
    judge = "openai/examiner@http://alice:pw-Hd83kLq0@127.0.0.1:9/v1"
    result = pytester.runpytest(
        str(SUITES), "-p", "no:cacheprovider", "--collect-only", "-q", "--model=medbench/oracle",
        f"--judge-model={judge}", "-o", "console_output_style=classic", "-v",
    )  # fmt: skip
    header = [line for line in result.outlines if line.startswith("medbench: model")]
    assert header == [
        "medbench: model medbench/oracle (built-in); judge openai/examiner@http://127.0.0.1:9/v1"
    ]
    assert "pw-Hd83kLq0" not in result.stdout.str() + result.stderr.str()


def test_a_key_with_a_quote_is_masked_in_a_failure_messages_repr(monkeypatch):
    """A failure message shows the parsed answer's repr, which escapes a quote the key holds when the
    answer holds both kinds (``it\\'s``): the key was shown whole in the terminal and junit XML."""
    from pytest_medbench.report.records import ItemRecord

    key = "it's-a-key-Vn60\\x"
    monkeypatch.setenv("QUOTE_API_KEY", key)
    record = ItemRecord("meds", "task52", "rationale", "1", parsed={"answer": f'he said "ok", {key}'})
    message = record.failure_message()
    assert "Vn60" not in message and "he said" in message


def test_a_key_set_or_changed_after_a_first_mask_is_masked(monkeypatch):
    """The secrets are read when masking (module docstring: a key set after start-up counts too),
    though the list is kept between calls while the environment stays the same."""
    from pytest_medbench.models.secrets import mask

    assert mask("before sk-late-Tq3z-0001") == "before sk-late-Tq3z-0001"
    monkeypatch.setenv("LATE_API_KEY", "sk-late-Tq3z-0001")
    assert mask("after sk-late-Tq3z-0001") == "after ***"
    monkeypatch.setenv("LATE_API_KEY", "sk-late-Tq3z-0002")
    assert mask("sk-late-Tq3z-0001 sk-late-Tq3z-0002") == "sk-late-Tq3z-0001 ***"


def test_masking_survives_an_environment_replaced_by_a_plain_dict(monkeypatch):
    """A test that replaces ``os.environ`` with a dict, then fails: its report is masked as any, not an
    INTERNALERROR that ends every test's session (os.environ's raw mapping is then missing)."""
    import os

    from pytest_medbench.models.secrets import mask

    monkeypatch.setattr(os, "environ", {"MY_TOKEN": "dict-secret-Wm27"})
    assert mask("saw dict-secret-Wm27") == "saw ***"


def test_a_short_password_is_masked_in_texts_never_in_numbers(monkeypatch, tmp_path):
    """The samples file and the leaderboard are masked as JSON: a URL's 4-character password masked
    in the JSON text turned a latency of 0.1234 into 0.***, and the file could not be read."""
    from pytest_medbench.models import secrets
    from pytest_medbench.report import leaderboard

    monkeypatch.setattr(secrets, "_registered", set())
    secrets.register_url("http://admin:1234@127.0.0.1:9/v1")
    leaderboard.write(tmp_path / "board.json", {"latency_s": 0.1234, "output": "dose 1234 mg", "n": [1234]})
    board = json.loads((tmp_path / "board.json").read_text())
    assert board == {"latency_s": 0.1234, "output": "dose *** mg", "n": [1234]}
