"""A content-addressed response cache in SQLite (WAL), shared safely by all xdist workers.

Each answer is committed as soon as it arrives, so a run killed part-way loses nothing it was
given, and the rerun asks the model only for what is missing. Errors are never stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from ..utf8 import utf8, utf8_text
from .secrets import masked_json
from .waits import pause

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
"""
# Take a claim when it is free, ours, expired, or held by a process we know to be dead.
_CLAIM = """
INSERT INTO claims (key, owner, expires) VALUES (?1, ?2, ?3)
ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
WHERE claims.owner = excluded.owner OR claims.expires < ?4 OR claims.owner = ?5
"""
POLL_S = 0.02


class CacheUnusable(Exception):
    """The cache file exists but SQLite cannot use it (truncated, not a database, a directory)."""


class CacheReadOnlyWarning(UserWarning):
    """The cache file cannot be written: this run keeps its new answers in memory only."""


def check_usable(path: Path) -> None:
    """Raise CacheUnusable when ``path`` exists and is not a sound SQLite file, before any item runs
    (otherwise every item would fail on it with a traceback, and answers paid for would be lost).
    ``quick_check`` reads the whole file: 26 ms for 15,000 answers, 13.6 MB (bench/cache_check.py)."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_file():
        raise CacheUnusable("not a file")
    try:
        db = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
        try:
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise CacheUnusable(str(exc)) from exc
    if verdict != "ok":
        raise CacheUnusable(verdict)


def cache_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that changes an answer.

    The caller passes only answer-changing fields (model, generation parameters, messages, epoch);
    timeouts, retries and API keys must never reach this function.
    """
    canonical = _CANONICAL.encode(request)
    return hashlib.sha256(utf8(canonical)).hexdigest()


# what json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":")) builds on every
# call, made once (the same text; 0.8 us of a 4.6 us key, computed for every cached answer read)
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class ItemScope:
    """Where one item's requests are stored in the -n workers' scratch file (no cache file): under
    the item's name (a MedR-Bench dialogue's, for the calls its two settings share) and how often
    the item has asked the request before. Its test, on any worker, finds what the prefetch asked
    for it, while a request another item, or a later turn, repeats is asked again, as in a
    sequential run without a cache. One per item and epoch, used by one thread at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._asked: Counter[str] = Counter()

    def key(self, key: str) -> str:
        """The scratch key of the next asking of the request whose cache key is ``key``."""
        occurrence = self._asked[key]
        self._asked[key] += 1
        return cache_key({"request": key, "scope": self.name, "occurrence": occurrence})


class ResponseCache:
    """The answers on disk. With ``claims`` (xdist workers, or separate runs sharing the file), a
    process about to ask the model first claims the request, and one that finds it claimed waits for
    the answer instead of asking again: a request is never paid for twice. Within one process, a
    task (the prefetch's) that finds another of its tasks asking the request waits the same way."""

    def __init__(self, path: Path | str, *, claims: bool = False) -> None:
        self.path = path
        self.claims = claims
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit, so every put is durable on its own.
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 60000")
        _switch_to_wal(self._db)
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()  # one connection, shared by the prefetch threads
        self._asking: set[str] = set()  # the requests this process's tasks have claimed and are asking
        self._unsaved: dict[str, dict[str, Any]] | None = None  # new answers, once the file is read-only

    def _write(self, sql: str, params: tuple) -> int:
        """Run one write; on a read-only file, warn once and return -1 (the caller keeps it in memory)."""
        if self._unsaved is None:
            try:
                with self._lock:
                    return self._db.execute(sql, params).rowcount
            except sqlite3.OperationalError as exc:
                if "readonly" not in str(exc):
                    raise
                self._unsaved = {}
                warnings.warn(
                    CacheReadOnlyWarning(
                        f"the cache {self.path} cannot be written ({exc}): this run's new answers are "
                        "kept in memory only, and a rerun will ask for them again"
                    ),
                    stacklevel=3,
                )
        return -1

    def get(self, key: str) -> dict[str, Any] | None:
        if self._unsaved and key in self._unsaved:
            return self._unsaved[key]
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        sql = "INSERT OR REPLACE INTO responses (key, model, created, response) VALUES (?, ?, ?, ?)"
        # the payer's name may hold a surrogate. A message of ours (why a 200 held no answer) may quote
        # a provider's body that echoes the key: masked. The model's answer is kept as given, so a
        # rerun scores the text the first run scored (README: a key the answer itself echoes stays)
        text = utf8_text(masked_json(response, keep=("text", "reasoning"), ensure_ascii=False))
        if self._write(sql, (key, model, time.time(), text)) < 0:
            self._unsaved[key] = response  # type: ignore[index]

    def acquire(self, key: str, ttl_s: float) -> dict[str, Any] | None:
        """Claim ``key`` for this task, waiting while another task of this process or another live
        process holds it: returns the answer it stored, or None once the claim is ours (the caller
        then asks the model and must ``release``). ``ttl_s`` bounds a claim whose owner cannot be
        checked. The claims in the file are by process, so this process's own are kept here."""
        held = False
        try:
            while not (held := self._ask_here(key)):  # another task of this process is asking it
                if (hit := self.get(key)) is not None:
                    return hit
                pause(POLL_S)
            hit = self._claim(key, ttl_s)
        except BaseException:
            if held:
                self._asking.discard(key)
            raise
        if hit is not None:
            self._asking.discard(key)
        return hit

    def _ask_here(self, key: str) -> bool:
        """Take ``key`` for the calling task unless another task of this process has it."""
        with self._lock:
            if key in self._asking:
                return False
            self._asking.add(key)
            return True

    def _claim(self, key: str, ttl_s: float) -> dict[str, Any] | None:
        """The claim in the file, for this process (see ``acquire``)."""
        dead = ""
        while True:
            now = time.time()
            taken = self._write(_CLAIM, (key, self.owner, now + ttl_s, now, dead))
            if taken < 0:  # a read-only file takes no claims: ask, as a run without claims would
                return self.get(key)
            with self._lock:
                holder = self._db.execute("SELECT owner FROM claims WHERE key = ?", (key,)).fetchone()
            hit = self.get(key)  # also after taking the claim: its last owner may have just answered
            if taken and hit is not None:
                self.release(key)
            if hit is not None or taken:
                return hit
            if holder is not None and not _alive(holder[0]):
                dead = holder[0]
                continue
            pause(POLL_S)

    def release(self, key: str) -> None:
        """Give the claim up. This process's own mark goes last, and whatever happens to the file's
        (a locked or full file raises): before it, a sibling task would take the file's claim,
        which is by process, and this delete would then remove it; kept after a failed delete, the
        mark would keep every later asking of the request waiting for good."""
        try:
            self._write("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))
        finally:
            self._asking.discard(key)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _switch_to_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """WAL mode, waiting out other workers that open the new file at the same moment: SQLite
    answers "locked" to a journal-mode change at once, without its busy handler."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _alive(owner: str) -> bool:
    """False only for a process on this host that no longer runs; other hosts' claims expire.

    A killed xdist worker stays a zombie until the controller reaps it, which it does only at the
    end: ``kill(pid, 0)`` still finds it, so its state in ``/proc`` (Linux) decides."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # not Linux, or gone this instant: kill() above has the last word
        return False
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")  # the state follows "(command name)"
