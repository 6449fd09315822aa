"""The lean transport's HTTP process: Ctrl-C leaves the calls in flight to finish, and a process that
dies costs a retry, never a lost or hung call."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

from openai_server import OpenAIServer, Reply, echo_last_user

from conftest import SUITES, mcqa_data
from pytest_medbench.models import http_process
from pytest_medbench.models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
from pytest_medbench.models.errors import ModelCallError

MESSAGES = [{"role": "user", "content": "What causes scurvy?"}]


def client(server: OpenAIServer, retries: int) -> ModelClient:
    return ModelClient(
        ModelSpec.parse("openai/test-model", server.api_base),
        GenerationParams(),
        cache=None,
        timeout_s=5,
        retry=RetryPolicy(max_retries=retries, backoff_s=0),
        sleep=lambda seconds: None,
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
