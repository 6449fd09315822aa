"""``pause``: how the model clients wait (a retry's backoff, a rate limit, another process's claim).

In a thread of its own, a pause is ``time.sleep``. In a task the HTTP process's reader thread hosts
(``http_process.HTTPProcess.host``: the prefetch's tasks as greenlets on one thread), sleeping would
hold up every other task; there the reader goes on with the others until the pause is over.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Host(Protocol):
    def pause_hosted(self, seconds: float) -> bool:
        """Pause the calling task if this host runs it (True), else do nothing (False)."""
        ...


_this_thread = threading.local()


def hosting(host: Host) -> None:
    """This thread runs ``host``'s tasks (called by the reader thread, once)."""
    _this_thread.host = host


def host_here() -> Host | None:
    """The host whose tasks this thread runs, if any."""
    return getattr(_this_thread, "host", None)


STEP_S = 0.1  # how often a hosted task's pause looks at its ``until`` event


def pause(seconds: float, until: threading.Event | None = None) -> None:
    """Wait ``seconds``, or, given ``until``, no longer than until it is set (a hosted task looks
    every ``STEP_S``)."""
    host = getattr(_this_thread, "host", None)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0 and not (until is not None and until.is_set()):
        step = left if until is None else min(left, STEP_S)
        if host is None or not host.pause_hosted(step):
            if until is None:
                time.sleep(left)
            else:
                until.wait(left)
            return
