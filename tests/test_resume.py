"""A run killed part-way, then rerun: nothing already answered is asked again, nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from openai_server import OpenAIServer, Reply, echo_last_user

from conftest import SUITES


def prompt_of(request: dict) -> str:
    return json.dumps(request["messages"], sort_keys=True)


@pytest.mark.parametrize("workers", [None, "2"])
def test_killed_run_resumes_without_asking_twice(tmp_path, workers):
    cache = tmp_path / "cache.sqlite3"
    answered: set[str] = set()
    process: dict[str, subprocess.Popen] = {}
    kill_at = 12

    def killing_responder(request, number):
        if number == kill_at:  # the run dies while this request waits for its answer
            os.killpg(process["run"].pid, signal.SIGKILL)
            return Reply(status=503, content="gone")
        answered.add(prompt_of(request))
        return echo_last_user(request, number)

    args = [
        sys.executable,
        "-m",
        "pytest",
        str(SUITES),
        "-p",
        "no:cacheprovider",
        "-q",
        "-k",
        "mcqa or oracle_diagnosis",
        "--model",
        "openai/test-model",
        "--medbench-cache",
        str(cache),
        "--medbench-retries",
        "0",
    ]
    if workers:
        args += ["-n", workers]
    env = {**os.environ, "OPENAI_API_KEY": "sk-local-test"}
    with OpenAIServer(killing_responder) as server:
        process["run"] = subprocess.Popen(
            [*args, "--api-base", server.api_base],
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert process["run"].wait(timeout=120) == -signal.SIGKILL
    assert len(answered) >= kill_at - 2

    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    # An answer can be lost only if it was on the wire when the run died: one per process at most.
    assert len(answered) - (int(workers) if workers else 1) <= stored <= len(answered)

    with OpenAIServer() as server:
        rerun = subprocess.run(
            [*args, "--api-base", server.api_base], env=env, capture_output=True, text=True, timeout=120
        )
        asked_again = {prompt_of(request) for request in server.requests}
    assert len(server.requests) == 21 - stored, "an answer stored by the killed run was asked for again"
    assert len(answered | asked_again) == 21  # 17 MCQA instances + 4 oracle-diagnosis cases, none lost
    assert rerun.stdout.splitlines()[-1].startswith("21 failed")  # echo answers are wrong, but all ran
