"""The lean transport's HTTP process: Ctrl-C leaves the calls in flight to finish, and a process that
dies costs a retry, never a lost or hung call; and what both ways of making the calls (in the calling
thread, in the HTTP process) must do alike."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from openai_server import OpenAIServer, Reply, echo_last_user

from conftest import SUITES, mcqa_data
from pytest_medbench.models import http_process, waits
from pytest_medbench.models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
from pytest_medbench.models.errors import ModelCallError
from pytest_medbench.models.http_child import session_for_calls
from pytest_medbench.models.transport import Endpoint, HTTPTransport

MESSAGES = [{"role": "user", "content": "What causes scurvy?"}]


def client(server: OpenAIServer, retries: int, http_process: bool = True) -> ModelClient:
    return ModelClient(
        ModelSpec.parse("openai/test-model", server.api_base),
        GenerationParams(),
        cache=None,
        timeout_s=5,
        retry=RetryPolicy(max_retries=retries, backoff_s=0),
        sleep=lambda seconds: None,
        http_process=http_process,
    )


def call_in_thread(model: ModelClient) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def call() -> None:
        started = time.monotonic()
        try:
            outcome["text"] = model.complete(MESSAGES).text
        except ModelCallError as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=call)
    thread.start()
    return thread, outcome


def wait_for_requests(server: OpenAIServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(server.requests) < count:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.01)


def test_ctrl_c_reaches_the_http_process_and_the_call_in_flight_still_gets_its_answer():
    """Ctrl-C goes to the whole process group; pytest decides what to stop and waits for the calls in
    flight, so the HTTP process must not die under them."""
    with OpenAIServer(lambda request, number: Reply(content="vitamin C deficiency", hang_s=0.5)) as server:
        model = client(server, retries=0)
        thread, outcome = call_in_thread(model)
        wait_for_requests(server, 1)
        os.kill(http_process.shared()._process.pid, signal.SIGINT)
        thread.join(10)
    assert outcome.get("text") == "vitamin C deficiency", outcome
    assert len(server.requests) == 1


def test_a_call_in_flight_when_the_http_process_dies_is_retried_through_a_new_one():
    def first_hangs(request, number):
        return Reply(hang_s=2.0) if number == 1 else echo_last_user(request, number)

    with OpenAIServer(first_hangs) as server:
        model = client(server, retries=1)
        thread, outcome = call_in_thread(model)
        wait_for_requests(server, 1)
        dead = http_process.shared()._process
        dead.kill()
        thread.join(10)
        assert outcome.get("text") == "echo: What causes scurvy?", outcome
        assert outcome["seconds"] < 1.5  # failed at once when the process died, not after the hang
        assert http_process.shared()._process.pid != dead.pid


def test_without_retries_the_death_of_the_http_process_is_that_calls_connection_error():
    with OpenAIServer(lambda request, number: Reply(hang_s=2.0)) as server:
        model = client(server, retries=0)
        thread, outcome = call_in_thread(model)
        wait_for_requests(server, 1)
        http_process.shared()._process.kill()
        thread.join(10)
    assert isinstance(outcome.get("error"), ModelCallError), outcome
    assert outcome["error"].kind == "connection" and "the HTTP process ended" in str(outcome["error"])
    assert outcome["seconds"] < 1.5


def test_ctrl_c_to_a_whole_run_keeps_the_answers_in_flight(tmp_path):
    """A terminal's Ctrl-C signals the whole process group, the HTTP process included: the run stops
    (exit 2), and the answers of the calls it was waiting for are in the cache, not lost."""
    data, cache = mcqa_data(tmp_path, count=40), tmp_path / "cache.sqlite3"
    with OpenAIServer(lambda request, number: Reply(content="The right answer is A", hang_s=1.0)) as server:
        command = [sys.executable, "-m", "pytest", str(SUITES), "-p", "no:cacheprovider", "-q"]
        command += ["--medbench-data", str(data), "--model", "openai/m", "--api-base", server.api_base]
        command += ["--medbench-cache", str(cache), "--medbench-concurrency", "4", "--medbench-shots", "0"]
        run = subprocess.Popen(
            command, cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        wait_for_requests(server, 4)
        os.killpg(run.pid, signal.SIGINT)
        output = run.communicate(timeout=60)[0].decode()
        asked = len(server.requests)
    assert run.returncode == 2, output  # interrupted
    assert "KeyboardInterrupt" in output
    with sqlite3.connect(cache) as db:
        answered = db.execute("SELECT count(*) FROM responses").fetchone()[0]
    assert answered == asked >= 4, output  # every call that went out was answered and kept


def test_the_http_process_sets_no_deadline_of_its_own():
    """aiohttp's default gives up after 300 s; a reasoning model's long answer must get the whole
    ``--medbench-timeout``."""

    async def timeouts():
        async with session_for_calls() as session:
            return session.timeout

    limits = asyncio.run(timeouts())
    assert (limits.total, limits.connect, limits.sock_read, limits.sock_connect) == (None, None, None, None)


@pytest.mark.parametrize("from_a_hosted_task", [False, True], ids=["calling-thread", "hosted-task"])
def test_a_hung_http_process_is_stopped_and_the_retry_goes_through_a_new_one(monkeypatch, from_a_hosted_task):
    monkeypatch.setattr(http_process, "_GRACE_S", 0.5)
    with OpenAIServer() as server:
        model = client(server, retries=1)
        model.timeout_s = 0.5
        hung = http_process.shared()._process
        os.kill(hung.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            question = ask(model, "What causes scurvy?")
            text = hosted([question])[0] if from_a_hosted_task else question()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung.pid, signal.SIGCONT)
        assert text == "echo: What causes scurvy?"
        assert time.monotonic() - started < 5
        assert http_process.shared()._process.pid != hung.pid


def test_what_the_http_process_prints_cannot_garble_the_answers(monkeypatch):
    monkeypatch.setattr(http_process, "_START_CHILD", "print('x' * 100_000)\n" + http_process._START_CHILD)
    http_process.close_shared()
    try:
        with OpenAIServer() as server:
            assert client(server, retries=0).complete(MESSAGES).text == "echo: What causes scurvy?"
    finally:
        http_process.close_shared()


def test_an_http_process_that_cannot_start_says_why_once_and_is_not_started_again(monkeypatch):
    monkeypatch.setattr(http_process, "_START_CHILD", "raise ImportError('aiohttp is broken here')")
    http_process.close_shared()
    try:
        with OpenAIServer() as server:
            model = client(server, retries=3)
            http_process.shared()._process.wait()  # gone before the first call: its pipe is broken
            for _ in range(2):
                with pytest.raises(ModelCallError) as caught:
                    model.complete(MESSAGES)
                assert "the HTTP process could not start: ImportError: aiohttp is broken here" in str(
                    caught.value
                )
                assert caught.value.kind == "other" and caught.value.attempts == 1  # not retried
            assert not server.requests
            broken = http_process.shared()
            assert broken.broken and http_process.shared() is broken  # not started again
    finally:
        http_process.close_shared()


def test_a_forked_process_does_not_hold_the_http_process_open():
    http_process.shared()
    child = os.fork()
    if child == 0:  # the forked copy outlives the run's end by a while
        time.sleep(5)
        os._exit(0)
    try:
        started = time.monotonic()
        http_process.close_shared()
        assert time.monotonic() - started < 3
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


@pytest.mark.parametrize("in_own_process", [False, True], ids=["inline", "http-process"])
def test_tls_failures_keep_their_own_words(in_own_process):
    with OpenAIServer() as server:  # plain HTTP, asked over TLS
        model = client(server, retries=0)
        model.transport = HTTPTransport(
            Endpoint("openai/test-model", server.api_base.replace("http:", "https:"))
        )
        with pytest.raises(ModelCallError) as caught:
            model.complete(MESSAGES)
    assert caught.value.kind == "connection"
    assert "SSL" in str(caught.value) and "Operation not permitted" not in str(caught.value)


@pytest.mark.parametrize("in_own_process", [False, True], ids=["inline", "http-process"])
def test_long_headers_are_read_and_retry_after_is_found_however_it_is_spelled(in_own_process):
    def replies(request, number):
        if number == 1:
            return Reply(status=429, headers={"RETRY-AFTER": "7"})
        return Reply(content="fine", headers={"x-trace": "t" * 20_000})

    sleeps: list[float] = []
    with OpenAIServer(replies) as server:
        model = client(server, retries=1, http_process=in_own_process)
        model._sleep = sleeps.append
        assert model.complete(MESSAGES).text == "fine"
    assert sleeps == [7.0]


@pytest.mark.parametrize("in_own_process", [False, True], ids=["inline", "http-process"])
def test_a_key_that_cannot_be_sent_is_not_retried_and_not_shown(monkeypatch, in_own_process):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-4f1e2d3c\n")
    with OpenAIServer() as server:
        with pytest.raises(ModelCallError) as caught:
            client(server, retries=3, http_process=in_own_process).complete(MESSAGES)
        assert not server.requests
    assert caught.value.kind == "other" and caught.value.attempts == 1
    assert "4f1e2d3c" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "through_the_http_process"),
    [
        ([], False),
        (["--medbench-concurrency", "4"], True),
        (["-n", "2", "--medbench-concurrency", "4"], False),
    ],
    ids=["sequential", "concurrency", "xdist-workers"],
)
def test_only_a_process_with_calls_in_flight_and_cores_to_itself_starts_the_http_process(
    run_suites, tmp_path, monkeypatch, options, through_the_http_process
):
    """aiohttp names itself in the User-Agent; the standard library's client sends none. The run is
    in this process, so under -n this process is the xdist controller: it asks nothing, and must not
    start an HTTP process either (one process's start-up, beside the workers)."""
    http_process.close_shared()  # one an earlier test of this process started would serve the run
    started = []
    real_init = http_process.HTTPProcess.__init__
    monkeypatch.setattr(
        http_process.HTTPProcess, "__init__", lambda self: (started.append(self), real_init(self))[1]
    )
    with OpenAIServer(lambda request, number: Reply(content="The right answer is A")) as server:
        data = mcqa_data(tmp_path, count=8)
        result, _ = run_suites(
            "--medbench-data", str(data), "--model", "openai/m", "--api-base", server.api_base, *options
        )
    assert len(server.user_agents) >= 8, result.stdout.str()
    assert {"aiohttp" in agent for agent in server.user_agents} == {through_the_http_process}
    assert len(started) == through_the_http_process


@pytest.mark.parametrize(
    ("options", "events"),
    [
        (["--medbench-concurrency", "4"], ["http process", "data"]),
        (["--medbench-concurrency", "4", "--collect-only"], ["data"]),
        (["--medbench-concurrency", "4", "--model", "medbench/oracle"], ["data"]),
    ],
    ids=["run", "collect-only", "built-in-model"],
)
def test_the_http_process_starts_before_collection_reads_the_data(
    run_suites, tmp_path, monkeypatch, options, events
):
    """Its imports (0.18 s) then run on the other core while pytest collects, instead of before the
    first call; a run that asks no endpoint (--collect-only, a built-in model) starts none."""
    http_process.close_shared()
    seen = []
    real_init = http_process.HTTPProcess.__init__
    meds = importlib.import_module("pytest_medbench.data.meds")  # the one the run imports
    real_load = meds.load_meds
    monkeypatch.setattr(
        http_process.HTTPProcess, "__init__", lambda self: (seen.append("http process"), real_init(self))[1]
    )
    monkeypatch.setattr(meds, "load_meds", lambda *args: (seen.append("data"), real_load(*args))[1])
    with OpenAIServer(lambda request, number: Reply(content="The right answer is A")) as server:
        data = mcqa_data(tmp_path, count=8)
        result, _ = run_suites(
            "--medbench-data", str(data), "--model", "openai/m", "--api-base", server.api_base, *options
        )
    assert result.ret == 0, result.stdout.str()
    assert seen == events, result.stdout.str()


def hosted(tasks: list, model_calls: int = 1) -> dict:
    """Run ``tasks`` (functions of no argument) as tasks the shared HTTP process's reader hosts, all at
    once; what each returned or raised, by its index, and the threads they ran on."""
    process, outcome, threads = http_process.shared(), {}, set()
    waiting = list(enumerate(tasks))

    def task() -> None:
        index, work = waiting.pop(0)
        threads.add(threading.get_ident())
        try:
            outcome[index] = work()
        except ModelCallError as exc:
            outcome[index] = exc

    finished = process.host(task, len(tasks))
    assert finished is not None and finished.wait(20), "the hosted tasks did not finish"
    outcome["threads"] = threads
    return outcome


def ask(model: ModelClient, question: str):
    return lambda: model.complete([{"role": "user", "content": question}]).text


def test_hosted_tasks_keep_their_calls_in_flight_together_on_the_reader_thread_alone():
    """The prefetch's tasks need no thread each: four tasks on the reader thread have their four
    calls in flight at once (the server answers none until all four have arrived)."""
    all_four = threading.Barrier(4, timeout=5)

    def together(request, number):
        all_four.wait()
        return echo_last_user(request, number)

    with OpenAIServer(together) as server:
        model = client(server, retries=0)
        outcome = hosted([ask(model, f"question {index}") for index in range(4)])
    assert [outcome[index] for index in range(4)] == [f"echo: question {index}" for index in range(4)]
    assert outcome["threads"] == {http_process.shared()._reader.ident}


def test_a_hosted_tasks_backoff_lets_the_other_tasks_go_on():
    """A retry's wait (here a 429's Retry-After of 1 s) hands the reader thread to the other tasks:
    the other task's two calls (0.3 s each) are made before the retry, not held up behind its sleep."""

    limited = []

    def first_is_rate_limited(request, number):
        reply = echo_last_user(request, number)
        if reply.content == "echo: first" and not limited:
            limited.append(number)
            return Reply(status=429, content="slow down", headers={"retry-after": "1"})
        reply.hang_s = 0.3 if reply.content == "echo: second" else 0.0  # answered after the 429
        return reply

    with OpenAIServer(first_is_rate_limited) as server:
        model = ModelClient(  # the clients' own wait (no sleep of the test's)
            ModelSpec.parse("openai/test-model", server.api_base),
            GenerationParams(),
            cache=None,
            timeout_s=5,
            retry=RetryPolicy(max_retries=1, backoff_s=0),
            http_process=True,
        )
        second = ask(model, "second")
        outcome = hosted([ask(model, "first"), lambda: [second(), second()]])
        asked = [request["messages"][-1]["content"] for request in server.requests]
    assert outcome[0] == "echo: first" and outcome[1] == ["echo: second", "echo: second"]
    assert asked[-1] == "first" and sorted(asked[:3]) == ["first", "second", "second"], asked


def test_hosted_tasks_with_long_requests_and_answers_never_block_the_two_pipes():
    """The reader thread writes the hosted tasks' requests as well as reading the answers: a child
    that stopped reading requests while its answers pipe was full would leave both blocked."""
    long_text = "x" * 200_000

    def long_answers(request, number):
        return Reply(content=long_text)

    with OpenAIServer(long_answers) as server:
        model = client(server, retries=0)
        outcome = hosted([lambda: [ask(model, long_text)() for _ in range(5)] for _ in range(8)])
    assert all(outcome[index] == [long_text] * 5 for index in range(8))


def test_hosted_tasks_keep_their_calls_in_flight_together_after_the_http_process_dies():
    """Their calls in flight fail when the child dies; the retries go to a new process, still all in
    flight at once (the server answers none of the four retries until all four have arrived), not
    one at a time from the old reader thread."""
    killed, all_four = threading.Event(), threading.Barrier(4, timeout=5)

    def answer(request, number):
        if number <= 4:  # in flight when the child is killed
            killed.wait(timeout=5)
        else:
            all_four.wait()
        return echo_last_user(request, number)

    with OpenAIServer(answer) as server:
        model = client(server, retries=1)
        process = http_process.shared()
        tasks = [ask(model, f"question {index}") for index in range(4)]
        outcome: dict = {}

        def run_all() -> None:
            outcome.update(hosted(tasks))

        runner = threading.Thread(target=run_all)
        runner.start()
        wait_for_requests(server, 4)
        process._process.kill()
        killed.set()
        runner.join(20)
    assert [outcome.get(index) for index in range(4)] == [f"echo: question {index}" for index in range(4)]
    assert http_process.shared() is not process


def test_a_reader_kept_busy_by_a_task_does_not_take_the_child_for_hung(monkeypatch):
    """One task holds the reader thread (2 s of work) while another's answer waits in the pipe past
    the call's deadline and grace: the answer is read, and the healthy child is not stopped."""
    monkeypatch.setattr(http_process, "_GRACE_S", 0.5)
    with OpenAIServer() as server:
        model = client(server, retries=0)
        model.timeout_s = 0.5
        process = http_process.shared()
        outcome = hosted([ask(model, "What causes scurvy?"), lambda: time.sleep(2.0)])
    assert outcome[0] == "echo: What causes scurvy?"
    assert not process.ended, process.ended
    assert http_process.shared() is process


# a stand-in for the HTTP process's child, for faults aiohttp will not make: it answers "ok" 50 ms
# after each request, never answers url "hang", exits at url "die", and with STAND_IN=deaf reads
# no request at all
STAND_IN_CHILD = """
import os, sys, threading, time
sys.path[:0] = [os.path.dirname(sys.argv[3])]
from pytest_medbench.models.http_process import READY, frame, frames
requests, answers = (int(fd) for fd in sys.argv[2].split(","))
lock = threading.Lock()
def send(message):
    with lock:
        os.write(answers, frame(message))
send((READY,))
if os.environ.get("STAND_IN") == "deaf":
    time.sleep(3600)
def later(request_id):
    time.sleep(0.05)
    send((request_id, 200, {}, b"ok"))
buffer = bytearray()
while chunk := os.read(requests, 1 << 16):
    buffer += chunk
    for request_id, url, headers, body, timeout_s in frames(buffer):
        if url == "die":
            os._exit(3)
        if url != "hang":
            threading.Thread(target=later, args=(request_id,), daemon=True).start()
"""


@pytest.fixture
def stand_in_child(monkeypatch):
    monkeypatch.setattr(http_process, "_START_CHILD", STAND_IN_CHILD)
    monkeypatch.setattr(http_process, "_GRACE_S", 0.3)
    http_process.close_shared()
    yield
    http_process.close_shared()


def test_a_hung_call_among_steady_answers_to_others_is_still_found(stand_in_child):
    """Answers to seven other tasks keep coming; the one call the child never answers is still
    taken for a hang about a second past its deadline and grace, not once the traffic stops."""
    process, started, outcome = http_process.shared(), time.monotonic(), {}

    def hung() -> None:
        with contextlib.suppress(ConnectionError):
            process.post("hang", {}, b"", 0.2)
        outcome["hang found after"] = time.monotonic() - started

    def steady() -> None:
        with contextlib.suppress(ConnectionError):  # once the hang is found, the child is stopped
            while time.monotonic() - started < 4.0:
                process.post("ok", {}, b"", 5.0)

    tasks = [hung] + [steady] * 7
    finished = process.host(lambda: tasks.pop(0)(), len(tasks))
    assert finished is not None and finished.wait(20)
    assert outcome["hang found after"] < 3.0, outcome  # the traffic went on for 4 s
    assert "sent no answer within 0.3 s past a call's deadline" in process.ended


def test_the_reader_of_a_dead_http_process_ends_when_its_last_task_returns_from_a_pause(stand_in_child):
    process = http_process.shared()

    def task() -> None:
        with contextlib.suppress(ConnectionError):
            process.post("die", {}, b"", 1.0)
        waits.pause(0.05)  # a retry's backoff, after which the task returns

    finished = process.host(task, 1)
    assert finished is not None and finished.wait(10)
    process._reader.join(5)
    assert not process._reader.is_alive() and process._hosting_over


def test_a_child_that_takes_no_request_costs_a_deadline_not_a_hang(stand_in_child, monkeypatch):
    """A child that stops reading requests fills the request pipe: the task writing to it gives up
    at the call's deadline and grace, the child is stopped, and the hosted tasks all return."""
    monkeypatch.setenv("STAND_IN", "deaf")
    process, outcome = http_process.shared(), []

    def task() -> None:
        try:
            process.post("ok", {}, b"x" * 40_000, 0.2)
        except ConnectionError as exc:
            outcome.append(str(exc))

    finished = process.host(task, 4)
    assert finished is not None and finished.wait(10)
    assert outcome and all("took no request within 0.5 s and was stopped" in text for text in outcome)


def test_the_prefetch_keeps_its_calls_in_flight_with_no_thread_each(run_suites, tmp_path):
    """With the HTTP process making every call, the prefetch's tasks are hosted by its reader: while
    the calls are answered, no prefetch thread exists, and four calls are in flight at once."""
    http_process.close_shared()
    all_four, threads = threading.Barrier(4, timeout=5), set()

    def answer(request, number):
        threads.update(thread.name for thread in threading.enumerate())
        if number <= 4:
            all_four.wait()
        return Reply(content="The right answer is A")

    with OpenAIServer(answer) as server:
        data = mcqa_data(tmp_path, count=8)
        options = ["--medbench-data", str(data), "--model", "openai/m", "--api-base", server.api_base]
        result, board = run_suites(*options, "--medbench-concurrency", "4", "--medbench-no-cache")
    assert len(server.requests) == 8 and board["tasks"][0]["passed"] == 8, result.stdout.str()
    assert "medbench-http" in threads
    assert not [name for name in threads if name.startswith("medbench-prefetch")], threads


def test_the_http_process_runs_this_very_package_whatever_sys_path_names_first(tmp_path, monkeypatch):
    """pytest puts the folder of a rootdir conftest.py first on sys.path, which may hold another copy
    of this package (a second checkout's suites run with this one on PYTHONPATH): the child must
    import the copy its parent runs, not that one."""
    decoy = tmp_path / "pytest_medbench"
    (decoy / "models").mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    (decoy / "models" / "__init__.py").write_text("")
    (decoy / "models" / "http_child.py").write_text("raise ImportError('the other copy')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    http_process.close_shared()
    try:
        with OpenAIServer() as server:
            assert client(server, retries=0).complete(MESSAGES).text == "echo: What causes scurvy?"
    finally:
        http_process.close_shared()
