"""Request and token limits shared by every process of a run (xdist workers included), in SQLite.

Each live call first waits until, over the last minute, fewer than ``rpm`` requests were started and
fewer than ``tpm`` tokens were used; its tokens are added when it returns. A 429 with a delay pauses
every process sharing the file, so one worker's back-off is everyone's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .waits import pause

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (id INTEGER PRIMARY KEY, started REAL NOT NULL, tokens INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pause (id INTEGER PRIMARY KEY CHECK (id = 1), until REAL NOT NULL);
"""


class SharedRateLimit:
    def __init__(
        self,
        path: Path,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = pause,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 60000")
        self._db.executescript(_SCHEMA)
        self.rpm, self.tpm, self.window_s = rpm, tpm, window_s
        self._clock, self._sleep = clock, sleep

    def acquire(self, stopped: Callable[[], bool] = lambda: False) -> int | None:
        """Wait for room under both limits, then register a call; returns its id for ``used``, or
        None once ``stopped()`` (the run's test loop has ended: the call is not made)."""
        while not stopped():
            self._db.execute("BEGIN IMMEDIATE")  # one process at a time decides
            try:
                now = self._clock()
                self._db.execute("DELETE FROM calls WHERE started <= ?", (now - self.window_s,))
                count, tokens, oldest = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(tokens), 0), MIN(started) FROM calls"
                ).fetchone()
                paused = self._db.execute("SELECT until FROM pause WHERE id = 1").fetchone()
                wait = max(0.0, paused[0] - now) if paused else 0.0
                if not wait and ((self.rpm and count >= self.rpm) or (self.tpm and tokens >= self.tpm)):
                    wait = max(0.01, oldest + self.window_s - now)
                if not wait:
                    call_id = self._db.execute(
                        "INSERT INTO calls (started, tokens) VALUES (?, 0)", (now,)
                    ).lastrowid
                    self._db.execute("COMMIT")
                    return call_id
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._sleep(wait)
        return None

    def used(self, call_id: int, tokens: int) -> None:
        self._db.execute("UPDATE calls SET tokens = ? WHERE id = ?", (tokens, call_id))

    def pause(self, seconds: float) -> None:
        """Hold every process's next call for ``seconds`` (after a 429)."""
        until = self._clock() + seconds
        self._db.execute(
            "INSERT INTO pause (id, until) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET until = MAX(until, ?)",
            (until, until),
        )

    def close(self) -> None:
        self._db.close()
