"""A content-addressed response cache in SQLite (WAL), shared safely by all xdist workers.

Each answer is committed as soon as it arrives, so a run killed part-way loses nothing it was
given, and the rerun asks the model only for what is missing. Errors are never stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    response TEXT NOT NULL
)
"""


def cache_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that changes an answer.

    The caller passes only answer-changing fields (model, generation parameters, messages, epoch);
    timeouts, retries and API keys must never reach this function.
    """
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class MemoryCache:
    """Answers kept for this process only (``--medbench-no-cache`` with concurrency): they carry the
    prefetched answers to the tests. A dict, since its reads and writes are atomic across threads."""

    def __init__(self) -> None:
        self._answers: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self._answers.get(key)

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        self._answers[key] = response

    def __len__(self) -> int:
        return len(self._answers)

    def close(self) -> None:
        self._answers.clear()


class ResponseCache:
    def __init__(self, path: Path | str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so every put is durable on its own.
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 60000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()  # one connection, shared by the prefetch threads

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, created, response) VALUES (?, ?, ?, ?)",
                (key, model, time.time(), json.dumps(response, ensure_ascii=False)),
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()


Cache = ResponseCache | MemoryCache
