"""The child end of ``http_process``: answers the parent's requests, many at a time, on one asyncio loop.

It ignores Ctrl-C (the pytest process decides what to do about it, and waits for the calls in
flight), and ends when its input closes, once its calls in flight are answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from typing import Any

from .http_process import frames, write_frame


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
        self._closed.set_result(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


async def _serve() -> None:
    # aiohttp, not httpx: at 64 calls in flight httpx's AsyncClient spent 8.9 ms of CPU a call here,
    # aiohttp 0.19 ms (2,000 and 4,000 calls to bench/latency_server.py)
    import aiohttp

    loop = asyncio.get_running_loop()
    answers = sys.stdout.buffer
    closed = loop.create_future()
    in_flight: set[asyncio.Task] = set()
    session = aiohttp.ClientSession(
        # the system's trust store, as the standard library's client uses; no limit on connections
        connector=aiohttp.TCPConnector(limit=0, ssl=ssl.create_default_context()),
        trust_env=False,  # the lean path is only taken for endpoints reached without a proxy
    )

    async def post(url: str, headers: dict, body: bytes) -> tuple:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            # headers matter only to an error (Retry-After): not copied and pickled for every answer
            kept = dict(response.headers) if response.status >= 300 else {}
            return response.status, kept, await response.read()

    async def answer(request: tuple) -> None:
        request_id, url, headers, body, timeout_s = request
        try:  # the whole call, body included, within the deadline: a trickling answer times out
            reply = (request_id, *await asyncio.wait_for(post(url, headers, body), timeout_s))
        except asyncio.TimeoutError:
            reply = (request_id, None, "timeout", "")
        except Exception as exc:  # aiohttp's client errors, a malformed answer: the connection failed
            reply = (request_id, None, "connection", _failure(exc))
        write_frame(answers, reply)

    def start(request: tuple) -> None:
        task = loop.create_task(answer(request))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    await loop.connect_read_pipe(lambda: _Requests(start, closed), sys.stdin.buffer)
    await closed
    while in_flight:
        await asyncio.gather(*in_flight)
    await session.close()


def _failure(exc: Exception) -> str:
    """What failed, as the standard library says it ("ConnectionRefusedError: [Errno 111]
    Connection refused", which tells the run its model cannot be reached): asyncio words a refused
    connection as "Connect call failed"."""
    cause = getattr(exc, "os_error", None)
    if isinstance(cause, OSError) and cause.errno and cause.errno > 0:
        return f"{type(cause).__name__}: [Errno {cause.errno}] {os.strerror(cause.errno)}"
    return f"{type(exc).__name__}: {exc}"


def main() -> None:
    """The child's entry point (``http_process.HTTPProcess`` starts it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # see the docstring
    asyncio.run(_serve())
