"""The lean transport's HTTP calls, made in a process of their own.

At 64 calls in flight and 50 ms a call, an endpoint answers 1,280 calls a second, and the pytest
process has one core's worth of Python for pytest's own work on each item, the harness's, and the
calls. Made in the asking thread with the standard library's client, a call cost that process about
0.32 ms of CPU (64 threads trading the GIL around every socket read); handed to this process over a
pipe, about 0.12 ms, while the HTTP work (connections, TLS, parsing, the deadline: aiohttp)
runs on another core (docs/performance.md). The asking thread still waits for its answer, so retries,
the cache and rate limits stay where they were.

Requests and answers cross the pipes as length-prefixed pickles: the other end is this package's own
child (``http_child.py``), started by ``HTTPProcess``, never anything else.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

_LENGTH = struct.Struct("!I")
# the child imports this very package: from the folder it came from (a checkout on PYTHONPATH, an
# editable install, site-packages), never from a checkout that happens to be the working directory
_START_CHILD = (
    "import sys; folder = sys.argv[1]; del sys.path[0]\n"
    "if folder not in sys.path: sys.path.insert(0, folder)\n"
    "from pytest_medbench.models.http_child import main; main()"
)
# past the call's own deadline (which the child enforces), how long a caller waits before it gives
# up on a child that has stopped answering at all
_GRACE_S = 30.0


class HTTPProcess:
    """The parent's end: ``post`` from any thread; one reader thread hands each answer to its caller."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _START_CHILD, str(Path(__file__).resolve().parents[2])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # nothing it could print may show a key; failures come back as answers
        )
        self.pid = os.getpid()  # a forked copy of this object must not share the pipes
        self._write_lock = threading.Lock()
        self._waiting: dict[int, _Waiter] = {}
        self._ids = itertools.count()
        self.ended: str | None = None
        self._reader = threading.Thread(target=self._read_answers, name="medbench-http", daemon=True)
        self._reader.start()

    def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> tuple[int, dict, bytes]:
        """(status, headers, body) of one POST, all of it within ``timeout_s``; TimeoutError when it
        does not come in time, ConnectionError (saying what failed, not where: the caller names the
        URL) when the connection, or the HTTP process, fails."""
        waiter = _Waiter()
        with self._write_lock:
            if self.ended:
                raise ConnectionError(self.ended)
            request_id = next(self._ids)
            self._waiting[request_id] = waiter
            try:
                write_frame(self._process.stdin, (request_id, url, headers, body, timeout_s))  # type: ignore[arg-type]
            except (OSError, ValueError) as exc:
                self._waiting.pop(request_id, None)
                raise ConnectionError(f"the HTTP process has ended ({exc})") from None
        if not waiter.done.acquire(timeout=timeout_s + _GRACE_S):
            self._waiting.pop(request_id, None)
            raise TimeoutError("no word from the HTTP process")
        status, headers_or_kind, data = waiter.outcome
        if status is None:
            raise (TimeoutError if headers_or_kind == "timeout" else ConnectionError)(data)
        return status, headers_or_kind, data

    def close(self) -> None:
        """Let the calls in flight finish, then end the child."""
        with self._write_lock, contextlib.suppress(OSError):
            self._process.stdin.close()  # type: ignore[union-attr]
        try:
            self._process.wait(timeout=_GRACE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=_GRACE_S)

    def _read_answers(self) -> None:
        stream: Any = self._process.stdout
        buffer = bytearray()
        while chunk := stream.read1(1 << 16):
            buffer += chunk
            for request_id, *outcome in frames(buffer):
                waiter = self._waiting.pop(request_id, None)
                if waiter is not None:  # None: its caller gave up waiting
                    waiter.outcome = outcome
                    waiter.done.release()
        with self._write_lock:
            self.ended = f"the HTTP process ended (exit status {self._process.wait()})"
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.outcome = [None, "connection", self.ended]
            waiter.done.release()


class _Waiter:
    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.outcome: Any = None


_shared: HTTPProcess | None = None
_shared_lock = threading.Lock()


def shared() -> HTTPProcess:
    """This process's HTTP process, started on first use and again after it ended."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.ended or _shared.pid != os.getpid():
            if _shared is None:
                atexit.register(close_shared)  # outside a run (medbench check-judge): ended at exit
            _shared = HTTPProcess()
        return _shared


def close_shared() -> None:
    """End this process's HTTP process, if it has one (the end of a run)."""
    global _shared
    with _shared_lock:
        process, _shared = _shared, None
    if process is not None and process.pid == os.getpid():
        process.close()


def write_frame(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


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
