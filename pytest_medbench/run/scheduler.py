"""The scheduler: solves and scores items. With ``--medbench-concurrency`` it answers them ahead of
the test loop in a bounded pool (each xdist worker its own share); each test then takes its item's
result, or solves it there and then.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, wait
from contextlib import contextmanager
from typing import Any

import pytest

from ..data.files import DataFileError
from ..items.base import EvalItem, Services
from ..items.medr import DIALOGUE_MODE
from ..models.client import set_wait_gate
from ..models.errors import ModelCallError
from ..models.secrets import mask
from ..options import Settings
from ..report.records import ItemRecord
from .clients import Clients
from .metering import item_services

RECORD_KEY = pytest.StashKey[ItemRecord]()


class ItemFailed(Exception):
    """An item that could not be scored (model or data error); its record says why."""


class _Stopped(Exception):
    """The test loop ended early (-x, Ctrl-C): a prefetch task gives up before its next epoch."""


class Scheduler:
    """Solves and scores the items of one process, ahead of the tests when there is concurrency."""

    def __init__(self, settings: Settings, clients: Clients, worker_input: dict) -> None:
        self.settings = settings
        self._clients = clients
        self._worker_input = worker_input
        self._conversations: dict = {}
        # results prefetch computed, by item key: the test takes its item's (usage included) as is
        self._prefetched: dict[tuple[str, str, str], tuple[ItemRecord, list[str], list[Any]]] = {}
        # model errors prefetch met after all its retries: the test reports them instead of asking
        # again, so an item's attempts are one budget
        self._prefetch_failed: dict[tuple[str, str, str], tuple[ItemRecord, ModelCallError]] = {}
        # the prefetch's pool and its pending work, by dialogue key (see prefetch)
        self._pool: Executor | None = None
        self._hosted: threading.Event | None = None  # set once the tasks the HTTP process hosts are done
        self._ahead: dict[tuple[str, ...], Future] = {}
        # set when the test loop ends: a task in flight (a dialogue's settings x epochs) stops
        # after the epoch it is in, rather than answering items no test will take
        self._stopping = threading.Event()

    def services(self, record: ItemRecord, epoch: int) -> Services:
        """The model, judge and agent for one item and epoch, metering usage into its record."""
        return item_services(self._clients, record, epoch, self._conversations, _dialogue_key(*record.key))

    def prefetch(self, items: list[EvalItem]) -> None:
        """Start answering ``items`` ``--medbench-concurrency`` at a time, in the order the tests will
        ask for them, while the tests run: a test waits only for its own item, so the wall time
        approaches the longer of the model's time and the harness's, not their sum.

        Each answer fills the cache (model, agent and judge calls alike) and is kept for its test. N
        tasks keep N calls in flight ahead of the test loop: hosted on the reader thread of the HTTP
        process when every call of the run goes through it (``HTTPProcess.host``: an answer then wakes
        one thread, where a thread per call cost the test loop's thread a quarter of its time at 64
        in flight, waiting for the interpreter lock), else a pool of N threads taking turns through a
        gate (``_Gate``). Errors are left for the test to
        meet again and report; the two settings of one dialogue are answered one after the other by
        one task, the second reusing the conversation (and both tests wait for that task), so the
        second's judge calls are not left for the test loop to make one by one. An xdist worker
        takes its own share of them (every worker collected the same list); the shared cache's
        claims keep a test from asking again what another worker is still asking.
        ``stop_prefetch`` ends it.
        """
        from concurrent.futures import ThreadPoolExecutor

        dialogues: dict[tuple[str, ...], list[EvalItem]] = {}
        for item in items:
            dialogues.setdefault(_dialogue_key(item.benchmark, item.task, item.item_id), []).append(item)
        chosen = list(dialogues.items())
        if self._worker_input:  # shares by dialogue, so that both settings of one land together
            count = self._worker_input["workercount"]
            worker = int(self._worker_input["workerid"].removeprefix("gw")) % count
            chosen = chosen[worker::count]
        if not chosen:  # the xdist controller (it collects none), or a worker with no share: no
            return  # clients, so no HTTP process to start (0.3 s of a core, beside the workers)

        # the clients (and the cache they share) are made here, once: cached_property does not lock
        # on Python 3.12+, and the threads below would each make their own
        _ = (self._clients.client, self._clients.judge_clients, self._clients.agent_client)

        def answer(group: list[EvalItem]) -> None:
            for item in group:
                record = ItemRecord(item.benchmark, item.task, item.category, item.item_id)
                try:
                    self._prefetched[record.key] = (record, *self._solve_and_score(item, record, True))
                except _Stopped:
                    return
                except ModelCallError as exc:
                    self._prefetch_failed[record.key] = (record, exc)
                except Exception:  # the test meets the same error again and reports it
                    pass

        # N tasks take the dialogues in order
        self._ahead = {key: Future() for key, _ in chosen}
        waiting = deque((self._ahead[key], group) for key, group in chosen)
        gate = _Gate()

        def work() -> None:
            while waiting and not self._stopping.is_set():
                future, group = waiting.popleft()
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    answer(group)
                except BaseException as exc:  # as ThreadPoolExecutor does: the test's wait ends
                    future.set_exception(exc)
                else:
                    future.set_result(None)

        def gated_work() -> None:
            set_wait_gate(gate)
            try:
                with gate.held():
                    work()
            finally:
                set_wait_gate(None)

        in_flight = min(self.settings.concurrency, len(chosen))
        process = self._clients.http_process_of_every_call()
        self._hosted = process.host(work, in_flight) if process is not None else None
        if self._hosted is None:
            self._pool = ThreadPoolExecutor(in_flight, thread_name_prefix="medbench-prefetch")
            for _ in range(in_flight):
                self._pool.submit(gated_work)

    def stop_prefetch(self) -> None:
        """After the test loop (which -x or Ctrl-C may cut short): drop what was not started, end
        the retries, and wait for the calls in flight, so nothing writes to the cache once it is
        closed."""
        if self._pool is not None or self._hosted is not None:
            self._stopping.set()
            self._clients.stop_asking()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            if self._hosted is not None:
                self._hosted.wait()
            for future in self._ahead.values():
                future.cancel()  # those not started: no test waits for them now
            self._pool, self._hosted, self._ahead = None, None, {}

    def _solve_and_score(
        self, item: EvalItem, record: ItemRecord, ahead: bool = False
    ) -> tuple[list[str], list[Any]]:
        """Every epoch of one item; ``ahead`` (a prefetch task) gives up once the test loop has ended."""
        outputs, scores = [], []
        for epoch in range(self.settings.epochs):
            if ahead and self._stopping.is_set():
                raise _Stopped
            services = self.services(record, epoch)
            transcript = item.solve(services)
            record.messages = transcript.messages
            outputs.append(transcript.output)
            scores.append(item.score(transcript, services))
        return outputs, scores

    def evaluate(self, item: EvalItem, node: pytest.Item) -> ItemRecord:
        """Solve the item with the model, score it, and stash the record on the node for the reporter."""
        record = ItemRecord(item.benchmark, item.task, item.category, item.item_id, node.nodeid, item.tags)
        record.reference = item.reference
        node.stash[RECORD_KEY] = record
        ahead = self._ahead.pop(_dialogue_key(*record.key), None) if self._ahead else None
        if ahead is not None and not ahead.done():  # done already, most often: wait() is not free
            wait([ahead])  # this item's answers (or its dialogue's), from the prefetch
        try:
            if (done := self._prefetched.pop(record.key, None)) is not None:
                prefetched, outputs, scores = done
                _take_prefetched(record, prefetched)
            elif (failed := self._prefetch_failed.pop(record.key, None)) is not None:
                _take_prefetched(record, failed[0])
                raise failed[1]
            else:
                outputs, scores = self._solve_and_score(item, record)
        except ModelCallError as exc:
            record.error = {"kind": exc.kind, "message": str(exc)}
            raise ItemFailed(f"{item.benchmark} {item.task} {item.item_id}: {exc}") from None
        except DataFileError as exc:
            record.error = {"kind": "data", "message": str(exc)}
            raise ItemFailed(f"data error: {exc}") from None
        except Exception as exc:
            record.error = {"kind": "harness", "message": mask(f"{type(exc).__name__}: {exc}")}
            raise
        record.output, record.epoch_outputs = outputs[0], outputs if len(outputs) > 1 else []
        record.parsed = scores[-1].parsed
        record.aggregation = scores[0].aggregation
        record.passed = all(score.passed for score in scores)
        record.pass_rule = next((score.rule for score in scores if not score.passed), scores[-1].rule)
        record.unscorable = any(score.unscorable for score in scores)
        record.scores = _mean_scores([score.scores for score in scores])
        # every epoch's keys, not the first's: strict HoC counts only the labels an answer or its gold uses
        keys = dict.fromkeys(key for score in scores for key in score.counts)
        record.counts = {key: sum(score.counts.get(key, 0.0) for score in scores) for key in keys}
        return record


class _Gate:
    """Lets one prefetch thread run at a time, except while a thread waits on a model (or on another
    process's claim): ``ModelClient.complete`` opens the gate around the wait, then waits to take
    it back. The N threads still keep N calls in flight, but an answer read from the cache no longer
    hands the interpreter to the pool's other threads at every SQLite read (SQLite releases the GIL
    there): in a cached rerun one thread answers dialogue after dialogue, the others asleep on the
    gate. 15,000 cached items, 64 threads (bench/cached_pool.py): 177-188 us of CPU an item without
    the gate, 96-103 us with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextmanager
    def opened(self) -> Iterator[None]:
        """Around a wait by the thread that holds the gate."""
        self._lock.release()
        try:
            yield
        finally:
            self._lock.acquire()


def _take_prefetched(record: ItemRecord, prefetched: ItemRecord) -> None:
    """What the prefetch metered for an item, into the test's record: the same as a sequential run's."""
    record.messages, record.usage = prefetched.messages, prefetched.usage
    record.judge_usage, record.provenance = prefetched.judge_usage, prefetched.provenance
    record.finish_reason, record.truncated = prefetched.finish_reason, prefetched.truncated
    record.no_content = prefetched.no_content


def _dialogue_key(benchmark: str, task: str, item_id: str) -> tuple[str, ...]:
    """The two settings of one MedR-Bench dialogue share a key (they share the conversation); every
    other item has its own (twice per item: a module import, not one per call)."""
    mode = DIALOGUE_MODE.get(task)
    return (item_id, mode) if mode else (benchmark, task, item_id)


def _mean_scores(per_epoch: list[dict[str, float | None]]) -> dict[str, float | None]:
    merged: dict[str, float | None] = {}
    for name in per_epoch[0]:
        values = [scores[name] for scores in per_epoch if scores.get(name) is not None]
        merged[name] = sum(values) / len(values) if values else None
    return merged
