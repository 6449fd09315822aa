"""The lean transport's HTTP calls, made in a process of their own.

At 64 calls in flight and 50 ms a call, an endpoint answers 1,280 calls a second, and the pytest
process has one core's worth of Python for pytest's own work on each item, the harness's, and the
calls. Made in the asking threads with the standard library's client, the calls held that process's
GIL for the socket work and the parsing; handed to this process over a pipe they cost it a pickle
and a wake-up, while the HTTP work (connections, TLS, parsing, the deadline: aiohttp) runs on
another core (``bench/call_overhead.py``; docs/performance.md). The asking thread still waits for
its answer, so retries, the cache and rate limits stay where they were.

Requests and answers cross two pipes of their own as length-prefixed pickles (nothing the child
prints can get into them): the other end is this package's own child (``http_child.py``), started
by ``HTTPProcess``, never anything else. It runs in a session of its own, so a terminal's Ctrl-C
does not reach it: the pytest process decides what to stop, and waits for the calls in flight.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import itertools
import json
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from . import waits
from .secrets import mask

_LENGTH = struct.Struct("!I")
READY = "ready"  # the child's first frame, once its imports are done
# past the call's own deadline (which the child enforces), how long a caller waits before it takes
# the child for hung, stops it, and lets the next call start another
_GRACE_S = 30.0


class HTTPProcessBroken(Exception):
    """The HTTP process could not start (a broken aiohttp install, say): no call can be made, and
    retrying would only start it again."""


class HTTPProcess:
    """The parent's end: ``post`` from any thread; one reader thread hands each answer to its caller."""

    def __init__(self) -> None:
        requests_read, requests_write = os.pipe()
        self._answers_fd, answers_write = os.pipe()
        # why it could not start, if it could not; closed in close()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        command = [
            sys.executable,
            "-c",
            _START_CHILD,
            json.dumps(sys.path),
            f"{requests_read},{answers_write}",
            _PACKAGE_DIR,
        ]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                pass_fds=(requests_read, answers_write),
                start_new_session=True,  # see the module's docstring
            )
        finally:
            os.close(requests_read)
            os.close(answers_write)
        # written without blocking, so that a child that takes no request costs a deadline, not a hang
        self._requests_fd = requests_write
        os.set_blocking(requests_write, False)
        self._write_lock = threading.Lock()
        self._waiting: dict[int, _Waiter] = {}
        self._ids = itertools.count()
        self.ended: str | None = None
        self.broken = False  # it never started: see HTTPProcessBroken
        # tasks the reader thread hosts as greenlets (see host), and how it is woken to start them
        self._wake_fd, self._wake_write_fd = os.pipe()
        self._to_host: list[tuple[Callable[[], None], int, threading.Event]] = []
        self._ready: list[Any] = []  # hosted tasks another process's reader has answered
        self._live = 0  # hosted tasks that have not returned
        self._hosting_over = False  # the reader thread has ended (its wake pipe closed): it hosts no more
        self._hub: Any = None  # the reader thread's own greenlet, once it runs
        self._timers: list[tuple[float, int, Any]] = []  # paused tasks: (until, order, greenlet)
        self._order = itertools.count()
        self._next_hang_check = 0.0
        self._drained_at = 0.0  # when the reader last found no answer left to read
        self._reader = threading.Thread(target=self._read_answers, name="medbench-http", daemon=True)
        self._reader.start()

    def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body) of one POST, all of it within ``timeout_s``.

        TimeoutError when it does not come in time; ConnectionError when the connection or the HTTP
        process fails, ValueError when the request cannot be sent as given (both saying what failed,
        not where: the caller names the URL); HTTPProcessBroken when the process could not start."""
        host, task = _hosting_task()
        waiter, unsent = _Waiter(task, host, time.monotonic() + timeout_s + _GRACE_S), None
        with self._write_lock:
            self._raise_if_ended()
            request_id = next(self._ids)
            self._waiting[request_id] = waiter
            try:
                self._send(frame((request_id, url, headers, body, timeout_s)), waiter.deadline)
            except TimeoutError:  # the child is hung: it took no part of the request in that time
                self._waiting.pop(request_id, None)
                self.ended = self.ended or (
                    f"the HTTP process took no request within {timeout_s + _GRACE_S:g} s and was stopped"
                )
                with contextlib.suppress(OSError):
                    self._process.kill()
                unsent = TimeoutError("hung")
            except OSError as exc:  # the child is gone: the reader says why
                self._waiting.pop(request_id, None)
                unsent = exc
        if unsent is not None:
            if threading.current_thread() is not self._reader:  # which cannot wait for itself
                self._reader.join(timeout=_GRACE_S)
            self._raise_if_ended()
            raise ConnectionError(f"the HTTP process has ended ({unsent})")
        if host is not None:  # a hosted task: its thread goes on with the others until the answer is in
            host._hub.switch()
        elif not waiter.done.acquire(timeout=timeout_s + _GRACE_S):
            self._stop(f"the HTTP process sent no answer within {timeout_s + _GRACE_S:g} s and was stopped")
            waiter.done.acquire()  # the reader fails every call in flight once the process is gone
        status, headers_or_kind, data = waiter.outcome
        if status is not None:
            return status, headers_or_kind, data
        if headers_or_kind == "broken":
            raise HTTPProcessBroken(data)
        raise {"timeout": TimeoutError, "invalid": ValueError}.get(headers_or_kind, ConnectionError)(data)

    def _send(self, data: bytes, deadline: float) -> None:
        """The whole of ``data`` into the request pipe (``_write_lock`` held), waiting for room in
        it until ``deadline`` at most (TimeoutError)."""
        unsent = memoryview(data)
        while unsent:
            try:
                unsent = unsent[os.write(self._requests_fd, unsent) :]
            except BlockingIOError:
                wait_s = deadline - time.monotonic()
                if wait_s <= 0 or not select.select([], [self._requests_fd], [], wait_s)[1]:
                    raise TimeoutError from None

    def _close_requests(self) -> None:
        """The child then sees the end of its input."""
        fd, self._requests_fd = self._requests_fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _raise_if_ended(self) -> None:
        if self.ended:
            raise (HTTPProcessBroken if self.broken else ConnectionError)(self.ended)

    def _stop(self, reason: str) -> None:
        with self._write_lock:
            self.ended = self.ended or reason
        with contextlib.suppress(OSError):
            self._process.kill()

    def close(self) -> None:
        """Let the calls in flight finish, then end the child."""
        with self._write_lock:
            self._close_requests()
        try:
            self._process.wait(timeout=_GRACE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=_GRACE_S)
        self._stderr.close()

    def forget(self) -> None:
        """In a forked copy of this process: close its copy of the request pipe, which would
        otherwise keep the child from seeing the end of its input when the run closes it."""
        self._close_requests()

    def host(self, task: Callable[[], None], count: int) -> threading.Event | None:
        """Run ``count`` copies of ``task`` as greenlets on the reader thread, where the answers come
        in: a copy that posts here hands the thread back to the reader, which resumes it with its
        answer (and ``pause`` hands it back until its time). So the calls in flight need no thread
        each, and an answer wakes one thread, not two: the reader, and the caller it released.
        ``task`` must not raise. Returns an Event set once every copy has returned, or None when
        this process has ended (it hosts nothing more)."""
        finished = threading.Event()
        with self._write_lock:
            if self._hosting_over or self.ended:
                return None
            self._to_host.append((task, count, finished))
            os.write(self._wake_write_fd, b"\0")
        return finished

    def _resume_later(self, task: Any) -> None:
        """A task of this reader's, answered by another process's reader (this one's child had died
        and ``shared`` started another): resumed here, the only thread it can run on."""
        with self._write_lock:
            if not self._hosting_over:  # it is not: the task is still running
                self._ready.append(task)
                os.write(self._wake_write_fd, b"\0")

    def pause_hosted(self, seconds: float) -> bool:
        """``waits.pause`` in a task this reader thread hosts: the reader resumes it once the time is up."""
        host, task = _hosting_task()
        if host is not self:
            return False
        heapq.heappush(self._timers, (time.monotonic() + seconds, next(self._order), task))
        self._hub.switch()
        return True

    def _read_answers(self) -> None:
        """Hand each answer to its caller; when the child's pipe closes (or carries something that is
        not a frame), the process is over, and every call still waiting fails. Between answers, run
        the tasks it hosts (see ``host``)."""
        waits.hosting(self)
        outcome: list[Any] = [None, "connection", ""]
        try:
            buffer, started = bytearray(), False
            while True:
                readable = self._next_event()
                if self._answers_fd not in readable:
                    continue
                chunk = os.read(self._answers_fd, 1 << 16)
                if not chunk:
                    break
                if len(chunk) < 1 << 16:  # all there was
                    self._drained_at = time.monotonic()
                buffer += chunk
                for request_id, *answer in frames(buffer):
                    if not started:
                        started = request_id == READY
                        continue
                    waiter = self._waiting.pop(request_id, None)
                    if waiter is not None:
                        waiter.outcome = answer
                        waiter.wake()
            status = self._process.wait()
            if started:
                outcome[2] = f"the HTTP process ended (exit status {status})"
            else:
                outcome[1:] = ["broken", f"the HTTP process could not start: {self._last_error_line()}"]
        except Exception as exc:  # a malformed frame: the stream can no longer be trusted
            outcome[2] = f"the HTTP process sent something unreadable ({type(exc).__name__})"
            with contextlib.suppress(OSError):
                self._process.kill()
        finally:
            with self._write_lock:
                if self.ended is None:
                    self.ended, self.broken = outcome[2], outcome[1] == "broken"
                else:  # stopped by a caller (see post): a hang, not a start that failed
                    outcome[1] = "connection"
                waiting, self._waiting = self._waiting, {}
            outcome[2] = self.ended
            for waiter in waiting.values():
                waiter.outcome = outcome
                waiter.wake()
            os.close(self._answers_fd)
            # the tasks still running go on here (their calls now fail, or go to a new process)
            while True:
                with self._write_lock:
                    self._hosting_over = not (self._live or self._to_host or self._timers)
                    if self._hosting_over:
                        os.close(self._wake_fd)
                        os.close(self._wake_write_fd)
                        break
                self._next_event(answers=False)

    def _next_event(self, answers: bool = True) -> list[int]:
        """Run what is due (paused tasks whose time has come, tasks handed to ``host``, tasks another
        reader answered), then wait for the next answer, a task to host or resume, or the next
        pause's end: the readable descriptors."""
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            heapq.heappop(self._timers)[2].switch()
        if answers:
            self._stop_if_hung()
        elif not (self._live or self._to_host or self._timers or self._ready):
            return []  # the last task just returned: hosting is over (see _read_answers)
        timeout = 1.0 if answers else None
        if self._timers:
            timeout = min(timeout or 1.0, max(0.0, self._timers[0][0] - time.monotonic()))
        watched = [self._answers_fd, self._wake_fd] if answers else [self._wake_fd]
        readable, _, _ = select.select(watched, [], [], timeout)
        if answers and self._answers_fd not in readable:
            self._drained_at = time.monotonic()
        if self._wake_fd in readable:
            os.read(self._wake_fd, 4096)
            self._start_hosted()
            with self._write_lock:
                ready, self._ready = self._ready, []
            for task in ready:
                task.switch()
        return readable

    def _stop_if_hung(self) -> None:
        """Once a second: a hosted task's call whose deadline and grace had passed when the reader
        last found no answer left to read (so that a reader kept busy by its tasks, its answers
        waiting in the pipe, does not take the child for hung; and steady answers to the other calls
        do not hide it): the child is stopped, as ``post`` stops it for a call from a thread."""
        now = time.monotonic()
        if now < self._next_hang_check:
            return
        self._next_hang_check = now + 1.0
        with self._write_lock:
            late = any(w.task is not None and w.deadline <= self._drained_at for w in self._waiting.values())
        if late:
            self._stop(
                f"the HTTP process sent no answer within {_GRACE_S:g} s past a call's deadline "
                "and was stopped"
            )

    def _start_hosted(self) -> None:
        from greenlet import getcurrent, greenlet

        if self._hub is None:
            self._hub = getcurrent()
        with self._write_lock:
            batch, self._to_host = self._to_host, []
        for task, count, finished in batch:
            left = [count]  # copies of this task still running
            for _ in range(count):
                self._live += 1
                greenlet(self._run_hosted, parent=self._hub).switch(task, finished, left)

    def _run_hosted(self, task: Callable[[], None], finished: threading.Event, left: list[int]) -> None:
        try:
            task()
        except Exception as exc:  # task() must not raise; if it does, it is said, and the rest go on
            warnings.warn(RuntimeWarning(f"medbench: a hosted task ended with {exc!r}"), stacklevel=1)
        finally:
            self._live -= 1
            left[0] -= 1
            if not left[0]:
                finished.set()

    def _last_error_line(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            if lines:
                return mask(lines[-1])[:500]
        return f"exit status {self._process.returncode}"


class _Waiter:
    """One call's wait for its answer: a lock its thread blocks on, or the hosted task to resume
    (``host``: the HTTP process whose reader runs it, which may be another than the one asked)."""

    __slots__ = ("deadline", "done", "host", "outcome", "task")

    def __init__(self, task: Any, host: HTTPProcess | None, deadline: float) -> None:
        self.task, self.host, self.deadline, self.outcome = task, host, deadline, None
        if task is None:
            self.done = threading.Lock()
            self.done.acquire()

    def wake(self) -> None:
        """On the reader thread that read the answer."""
        if self.task is None:
            self.done.release()
        elif threading.current_thread() is self.host._reader:
            self.task.switch()
        else:
            self.host._resume_later(self.task)


def _hosting_task() -> tuple[HTTPProcess | None, Any]:
    """(the HTTP process whose reader runs this thread's tasks, the task) when called from such a
    task; else (None, None)."""
    host = waits.host_here()
    if host is None or host._hub is None:
        return None, None
    from greenlet import getcurrent

    task = getcurrent()
    return (None, None) if task is host._hub else (host, task)


# the child imports this very package from where its parent did: the parent's sys.path may name
# another copy first (pytest puts the folder of a rootdir conftest.py first, a checkout's), which
# the parent, having imported its own, never reads; nothing else is taken out of sys.path's order.
# aiohttp and the rest come from the parent's sys.path (a checkout on PYTHONPATH, an editable
# install, site-packages), whatever the child's flags or working directory.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_START_CHILD = (
    "import importlib.util, json, os, sys; sys.path[:] = json.loads(sys.argv[1])\n"
    "package = importlib.util.spec_from_file_location('pytest_medbench',"
    " os.path.join(sys.argv[3], '__init__.py'), submodule_search_locations=[sys.argv[3]])\n"
    "sys.modules['pytest_medbench'] = importlib.util.module_from_spec(package)\n"
    "package.loader.exec_module(sys.modules['pytest_medbench'])\n"
    "from pytest_medbench.models.http_child import main; main(sys.argv[2])"
)

_shared: HTTPProcess | None = None
_shared_lock = threading.Lock()


def shared() -> HTTPProcess:
    """This process's HTTP process, started on first use, and again after it ended (not after it
    could not start: then every call says why)."""
    global _shared
    with _shared_lock:
        if _shared is None or (_shared.ended and not _shared.broken):
            if _shared is None:
                atexit.register(close_shared)  # outside a run (medbench check-judge): ended at exit
            _shared = HTTPProcess()
        return _shared


def close_shared() -> None:
    """End this process's HTTP process, if it has one (the end of a run)."""
    global _shared
    with _shared_lock:
        process, _shared = _shared, None
    if process is not None:
        process.close()


def _forget_after_fork() -> None:
    global _shared
    if _shared is not None:
        _shared.forget()
    _shared = None


os.register_at_fork(after_in_child=_forget_after_fork)


def without_header_values(headers: dict, message: str) -> str:
    """``message`` with every header value (the bearer key among them) taken out, as it is and as
    Python writes it inside bytes (a control character escaped)."""
    for value in headers.values():
        message = message.replace(str(value), "***").replace(repr(str(value).encode())[2:-1], "***")
    return message


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def frames(buffer: bytearray) -> list[Any]:
    """The whole frames at the start of ``buffer``, removed from it; a partial one stays."""
    messages, start = [], 0
    while len(buffer) - start >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + length
        if end > len(buffer):
            break
        messages.append(pickle.loads(buffer[start + _LENGTH.size : end]))
        start = end
    del buffer[:start]
    return messages
