"""Live progress for long runs, on the controller, so it counts the items of every xdist worker.

A line is due every tenth of the run (or every 30 s); the reporter writes it only where pytest's own
output line is whole, so pytest's layout stays intact (see ``Reporter.pytest_runtest_logfinish``).
"""

from __future__ import annotations

import time
from typing import Any

from .records import ItemRecord

INTERVAL_S = 30.0


class Progress:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self.total = 0
        self.done = 0
        self.errors = 0
        self.cache_hits = 0
        self.reused = 0
        self.tokens = 0
        self.cost_usd = 0.0
        self.due = False  # a line is owed since the last one written
        self._started = clock()
        self._last_due = self._started
        self._last_tenth = 0

    def record(self, record: ItemRecord) -> None:
        usage = record.usage
        self.errors += record.error is not None
        self.cache_hits += usage.cache_hits
        self.reused += usage.reused
        self.tokens += usage.prompt_tokens + usage.completion_tokens + record.judge_usage.prompt_tokens
        self.tokens += record.judge_usage.completion_tokens
        self.cost_usd += usage.cost_usd + record.judge_usage.cost_usd

    def item_finished(self) -> None:
        self.done += 1
        now = self._clock()
        tenth = 10 * self.done // self.total if self.total else 0
        if tenth > self._last_tenth or now - self._last_due >= INTERVAL_S or self.done == self.total:
            self._last_tenth, self._last_due = tenth, now
            self.due = True

    def take_line(self) -> str:
        """The line owed, with the counts as they are now; none is owed after it."""
        self.due = False
        return self.line(self._clock())

    def line(self, now: float) -> str:
        elapsed = now - self._started
        remaining = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        share = f" ({100 * self.done // self.total}%)" if self.total else ""
        reused = f", {self.reused} reused within the run" if self.reused else ""
        counts = f"{self.errors} errors, {self.cache_hits} cache hits{reused}, {self.tokens:,} tokens"
        spent = f"${self.cost_usd:.4f} so far, ETA {_duration(remaining)}"
        return f"[medbench] {self.done}/{self.total} items{share}, {counts}, {spent}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
