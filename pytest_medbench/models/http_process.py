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
import itertools
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from typing import IO, Any

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
        self._requests = os.fdopen(requests_write, "wb")
        self._write_lock = threading.Lock()
        self._waiting: dict[int, _Waiter] = {}
        self._ids = itertools.count()
        self.ended: str | None = None
        self.broken = False  # it never started: see HTTPProcessBroken
        self._reader = threading.Thread(target=self._read_answers, name="medbench-http", daemon=True)
        self._reader.start()

    def post(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body) of one POST, all of it within ``timeout_s``.

        TimeoutError when it does not come in time; ConnectionError when the connection or the HTTP
        process fails, ValueError when the request cannot be sent as given (both saying what failed,
        not where: the caller names the URL); HTTPProcessBroken when the process could not start."""
        waiter, unsent = _Waiter(), None
        with self._write_lock:
            self._raise_if_ended()
            request_id = next(self._ids)
            self._waiting[request_id] = waiter
            try:
                write_frame(self._requests, (request_id, url, headers, body, timeout_s))
            except (OSError, ValueError) as exc:  # the child is gone: the reader says why
                self._waiting.pop(request_id, None)
                unsent = exc
        if unsent is not None:
            self._reader.join(timeout=_GRACE_S)
            self._raise_if_ended()
            raise ConnectionError(f"the HTTP process has ended ({unsent})")
        if not waiter.done.acquire(timeout=timeout_s + _GRACE_S):
            self._stop(f"the HTTP process sent no answer within {timeout_s + _GRACE_S:g} s and was stopped")
            waiter.done.acquire()  # the reader fails every call in flight once the process is gone
        status, headers_or_kind, data = waiter.outcome
        if status is not None:
            return status, headers_or_kind, data
        if headers_or_kind == "broken":
            raise HTTPProcessBroken(data)
        raise {"timeout": TimeoutError, "invalid": ValueError}.get(headers_or_kind, ConnectionError)(data)

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
        with self._write_lock, contextlib.suppress(OSError):
            self._requests.close()
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
        with contextlib.suppress(OSError):
            self._requests.close()

    def _read_answers(self) -> None:
        """Hand each answer to its caller; when the child's pipe closes (or carries something that is
        not a frame), the process is over, and every call still waiting fails."""
        outcome: list[Any] = [None, "connection", ""]
        try:
            with os.fdopen(self._answers_fd, "rb", buffering=0) as answers:
                buffer, started = bytearray(), False
                while chunk := answers.read(1 << 16):
                    buffer += chunk
                    for request_id, *answer in frames(buffer):
                        if not started:
                            started = request_id == READY
                            continue
                        waiter = self._waiting.pop(request_id, None)
                        if waiter is not None:
                            waiter.outcome = answer
                            waiter.done.release()
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
                waiter.done.release()

    def _last_error_line(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            self._stderr.seek(0)
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
            if lines:
                return mask(lines[-1])[:500]
        return f"exit status {self._process.returncode}"


class _Waiter:
    __slots__ = ("done", "outcome")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.outcome: Any = None


# the child imports this very package, and aiohttp, from the parent's own sys.path (a checkout on
# PYTHONPATH, an editable install, site-packages), whatever its flags or working directory
_START_CHILD = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1])\n"
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
