"""Request and token limits shared across processes, and a 429 that pauses every worker."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from pytest_medbench.models.ratelimit import SharedRateLimit


def _worker(path: str, calls: int, out: str) -> None:
    limit = SharedRateLimit(Path(path), rpm=6, window_s=1.0)
    stamps = []
    for _ in range(calls):
        call_id = limit.acquire()
        # the start time the limiter decided on (a clock read here could lag under load)
        stamps.append(limit._db.execute("SELECT started FROM calls WHERE id = ?", (call_id,)).fetchone()[0])
    Path(out).write_text(json.dumps(stamps))


def test_processes_share_one_request_budget(tmp_path):
    path = str(tmp_path / "rate.sqlite3")
    outs = [str(tmp_path / f"stamps{n}.json") for n in range(3)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(path, 6, out)) for out in outs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    stamps = sorted(t for out in outs for t in json.loads(Path(out).read_text()))
    assert len(stamps) == 18
    # in every 1-second window, at most 6 calls started (all processes together)
    assert all(stamps[i + 6] - stamps[i] >= 1.0 for i in range(len(stamps) - 6))
    assert stamps[-1] - stamps[0] >= 2.0  # 18 calls at 6 per second need at least two more seconds


def test_tokens_per_minute_and_a_pause_hold_the_next_call(tmp_path):
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit = SharedRateLimit(tmp_path / "rate.sqlite3", tpm=100, clock=lambda: now[0], sleep=sleep)
    limit.used(limit.acquire(), 80)
    limit.used(limit.acquire(), 30)  # 110 tokens in the window: the next call waits for it to pass
    now[0] += 5
    limit.acquire()
    assert slept == [55.0]
    limit.pause(7)
    limit.acquire()
    assert slept[-1] == 7.0


def test_a_run_with_limits_uses_one_shared_budget_file(run_suites, openai_server, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache = tmp_path / "run" / "cache.sqlite3"
    _, board = run_suites(
        "-k",
        "mcqa",
        "-n",
        "2",
        "--model=openai/echo",
        f"--api-base={openai_server.api_base}",
        f"--medbench-cache={cache}",
        "--medbench-rpm=600",
        "--medbench-tpm=100000",
    )
    assert sum(task["n"] for task in board["tasks"]) == 17 and len(openai_server.requests) == 17
    import sqlite3

    with sqlite3.connect(cache.parent / "ratelimit.sqlite3") as db:
        assert db.execute("SELECT COUNT(*), SUM(tokens) FROM calls").fetchone() == (17, 17 * 18)
