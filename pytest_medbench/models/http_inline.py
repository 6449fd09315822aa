"""The lean transport's HTTP calls, made in the calling thread: the standard library's client, each
thread on its own kept-alive connection, the whole call (connect to last byte) within its timeout.

About 0.1 ms of the process's CPU a call when one thread calls, 0.26 ms with 64 threads calling at
once against a 50 ms endpoint, since every socket read trades the GIL (``bench/call_overhead.py``).
A process that keeps many calls in flight hands them to ``http_process`` instead; a sequential run
or an xdist worker, whose cores are the other workers', makes them here, with no process to start.
Same contract as ``http_process.HTTPProcess.post``.
"""

from __future__ import annotations

import functools
import http.client
import io
import select
import socket
import threading
import time
import urllib.parse
from typing import Any

from .http_process import without_header_values


class InlineHTTP:
    """POSTs to one URL from any thread, each thread on its own connection."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()

    def post(self, headers: dict[str, str], body: bytes, timeout_s: float) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one POST to this object's URL; TimeoutError, ConnectionError
        or ValueError as ``HTTPProcess.post`` raises them."""
        deadline = time.monotonic() + timeout_s
        connection = self._connection(timeout_s)
        connection.response_class = functools.partial(_DeadlineResponse, deadline=deadline)
        try:
            connection.request("POST", self._path, body, headers)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        except TimeoutError:
            connection.close()
            raise TimeoutError() from None
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a header that cannot be sent (a control character in the key)
            connection.close()
            raise ValueError(without_header_values(headers, f"{type(exc).__name__}: {exc}")) from None

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        """This thread's connection, fresh when the server has closed the idle one."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and connection.sock is not None and _readable(connection.sock):
            connection.close()  # EOF (or stray bytes) on an idle connection: the server is done with it
        if connection is None:
            if self._https:
                connection = http.client.HTTPSConnection(self._host, self._port, timeout=timeout_s)
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
            self._local.connection = connection
        connection.timeout = timeout_s
        if connection.sock is not None:
            connection.sock.settimeout(timeout_s)
        return connection


class _DeadlineSocket:
    """The reading side of a socket, every read bounded by what is left until ``deadline``: a
    socket timeout alone bounds each read, so a body trickling a byte a second never times out."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the whole answer did not arrive in time")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer, nbytes, flags)

    def makefile(self, mode: str) -> io.BufferedReader:
        """A reader that holds a reference on the real socket, as ``socket.makefile``'s does: a
        response that closes its connection (``Connection: close``, HTTP/1.0, a body delimited by
        the close) has ``getresponse`` close the socket before the body is read, and the socket
        must stay open until this reader is done with it."""
        self._sock._io_refs += 1  # type: ignore[attr-defined]
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]

    def _decref_socketios(self) -> None:
        """Called when the reader closes: the real socket closes now if it was closed meanwhile."""
        self._sock._decref_socketios()  # type: ignore[attr-defined]


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads status, headers and body by ``deadline``."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(_DeadlineSocket(sock, deadline), *args, **kwargs)  # type: ignore[arg-type]


def _readable(sock: socket.socket) -> bool:
    """Whether an idle socket has something to read: only EOF or junk can be waiting there."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
