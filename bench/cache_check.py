"""How long the start-of-run cache check (``PRAGMA quick_check``) takes on a cache of 15,000 answers.

python bench/cache_check.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pytest_medbench.models.cache import ResponseCache, check_usable

ANSWERS = 15_000


def main() -> None:
    path = Path(tempfile.mkdtemp()) / "responses.sqlite3"
    cache = ResponseCache(path)
    cache._db.execute("BEGIN")
    for number in range(ANSWERS):
        row = (f"{number:064x}", "m", 0.0, '{"text": "%s"}' % ("an answer of some length " * 25))
        cache._db.execute("INSERT INTO responses VALUES (?, ?, ?, ?)", row)
    cache._db.execute("COMMIT")
    cache.close()
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        check_usable(path)
        timings.append(time.perf_counter() - started)
    size_mb = path.stat().st_size / 1e6
    print(f"{ANSWERS} answers, {size_mb:.1f} MB: check {min(timings) * 1000:.1f} ms (best of 5)")


if __name__ == "__main__":
    main()
