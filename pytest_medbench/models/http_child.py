"""The child end of ``http_process``: answers the parent's requests, many at a time, on one asyncio loop.

It ends when the parent's request pipe closes, once its calls in flight are answered. It ignores
SIGINT as well as running in a session of its own: a Ctrl-C is the pytest process's to handle.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
from typing import IO, Any

from .http_process import READY, frame, frames, without_header_values

# what the standard library's client accepted, where aiohttp's default is 8,190 bytes a header line
_MAX_HEADER_BYTES = 65536


class _Requests(asyncio.Protocol):
    """Reads request frames from the parent's pipe and starts a task for each."""

    def __init__(self, start: Any, closed: asyncio.Future) -> None:
        self._buffer = bytearray()
        self._start, self._closed = start, closed

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for request in frames(self._buffer):
            self._start(request)

    def eof_received(self) -> bool:
        if not self._closed.done():
            self._closed.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


class _Answers(asyncio.Protocol):
    """The answers pipe: written without blocking (asyncio buffers what the pipe cannot take yet), so
    the loop never stops reading requests. The parent may be writing a request from the very thread
    that reads the answers (a hosted task, ``HTTPProcess.host``): a child blocked on a full answers
    pipe would leave it blocked on a full requests pipe, for good."""

    def __init__(self, closed: asyncio.Future) -> None:
        self._closed = closed

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


def session_for_calls() -> Any:
    """One aiohttp session for every call (within a running loop)."""
    # aiohttp, not httpx: at 64 calls in flight httpx's AsyncClient spent 8.9 ms of CPU a call here,
    # aiohttp 0.19 ms (2,000 and 4,000 calls to bench/latency_server.py)
    import aiohttp

    return aiohttp.ClientSession(
        # the system's trust store, as the standard library's client uses; no limit on connections
        connector=aiohttp.TCPConnector(limit=0, ssl=ssl.create_default_context()),
        # no limit of aiohttp's (its default gives up after 300 s): the deadline is the caller's
        timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None),
        max_line_size=_MAX_HEADER_BYTES,
        max_field_size=_MAX_HEADER_BYTES,
        trust_env=False,  # the lean path is only taken for endpoints reached without a proxy
    )


async def _serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    closed, answered = loop.create_future(), loop.create_future()
    in_flight: set[asyncio.Task] = set()
    session = session_for_calls()
    answers_out, _ = await loop.connect_write_pipe(lambda: _Answers(answered), answers)

    async def post(url: str, headers: dict, body: bytes) -> tuple:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            # headers matter only to an error (Retry-After), named in lower case whatever the parser
            kept = (
                {name.lower(): value for name, value in response.headers.items()}
                if response.status >= 300
                else {}
            )
            return response.status, kept, await response.read()

    async def answer(request: tuple) -> None:
        request_id, url, headers, body, timeout_s = request
        try:  # the whole call, body included, within the deadline: a trickling answer times out
            reply = (request_id, *await asyncio.wait_for(post(url, headers, body), timeout_s))
        except asyncio.TimeoutError:
            reply = (request_id, None, "timeout", "")
        except (aiohttp.ClientError, OSError) as exc:  # refused, dropped, reset, malformed, TLS
            reply = (request_id, None, "connection", _failure(exc))
        except Exception as exc:  # the request itself cannot be sent (a control character in a header)
            message = without_header_values(headers, f"{type(exc).__name__}: {exc}")
            reply = (request_id, None, "invalid", message)
        answers_out.write(frame(reply))

    def start(request: tuple) -> None:
        task = loop.create_task(answer(request))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    answers_out.write(frame((READY,)))
    await loop.connect_read_pipe(lambda: _Requests(start, closed), requests)
    await closed
    while in_flight:
        await asyncio.gather(*in_flight)
    await session.close()
    answers_out.close()  # once what is buffered is written
    await answered


def _failure(exc: Exception) -> str:
    """What failed, as the standard library says it. asyncio words a refused connection "Connect call
    failed", where "[Errno 111] Connection refused" tells the run its model cannot be reached."""
    cause = getattr(exc, "os_error", None)
    if (
        isinstance(cause, OSError)
        and cause.errno
        and cause.errno > 0
        and str(cause.strerror).startswith("Connect call failed")
    ):
        return f"{type(cause).__name__}: [Errno {cause.errno}] {os.strerror(cause.errno)}"
    if isinstance(cause, OSError):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}"


def main(fds: str) -> None:
    """The child's entry point (``http_process.HTTPProcess`` starts it with its two pipes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # see the docstring
    requests_fd, answers_fd = (int(fd) for fd in fds.split(","))
    with os.fdopen(requests_fd, "rb", buffering=0) as requests, os.fdopen(answers_fd, "wb") as answers:
        asyncio.run(_serve(requests, answers))
