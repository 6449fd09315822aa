"""The prefetch pool's CPU per item when every answer is in the cache (not a test): the figure
docs/performance.md cites for the pool's gate.

    python bench/cached_pool.py [--items 15000] [--threads 1 64]

Fills a cache file for ``--items`` MCQA items of bench/throughput.py's data from
bench/latency_server.py (no latency), then times ``Scheduler.prefetch`` over them with each thread
count while the calling thread only waits: wall and process CPU per item, the best of three.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import Server, make_data

from pytest_medbench.data.meds import load_task
from pytest_medbench.items.meds import meds_items
from pytest_medbench.models.cache import ResponseCache
from pytest_medbench.models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
from pytest_medbench.prompts.meds import MedsPromptConfig
from pytest_medbench.run.scheduler import Scheduler


def clients_for(spec: ModelSpec, cache: ResponseCache) -> types.SimpleNamespace:
    """What the Scheduler reads of a run's Clients, for one model over ``cache``."""
    client = ModelClient(
        spec, GenerationParams(), cache=cache, timeout_s=30, retry=RetryPolicy(), run_id="bench"
    )
    return types.SimpleNamespace(
        client=client,
        judge_clients=[],
        agent_client=None,
        run_id="bench",
        scratch=False,
        model=spec,
        prompts=None,
        evidence=None,
    )


def prefetch_all(items: list, clients: types.SimpleNamespace, threads: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one prefetch of ``items`` to its end."""
    scheduler = Scheduler(types.SimpleNamespace(epochs=1, concurrency=threads), clients, {})
    cpu, wall = sum(os.times()[:2]), time.perf_counter()
    scheduler.prefetch(items)
    for key in list(scheduler._ahead):
        scheduler._ahead[key].result()
    wall, cpu = time.perf_counter() - wall, sum(os.times()[:2]) - cpu
    scheduler.stop_prefetch()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=15_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 64])
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        task = load_task(make_data(work, args.items) / "meds-bench" / "MCQA" / "task57_bench.json")
        items = list(meds_items([task], MedsPromptConfig("code", 0, 0), "official"))
        server = Server(0.0, work)
        cache = ResponseCache(work / "cache.sqlite3", claims=True)
        live = clients_for(ModelSpec.parse("openai/bench", server.api_base), cache)
        prefetch_all(items, live, 64)  # fills the cache
        server.finish()
        cache.close()  # the last connection's close checkpoints the WAL, as a finished run's does
        cache = ResponseCache(work / "cache.sqlite3", claims=True)
        cached = clients_for(ModelSpec.parse("openai/bench", "http://127.0.0.1:9/v1"), cache)
        rows = {}
        for threads in args.threads:
            wall, cpu = min(prefetch_all(items, cached, threads) for _ in range(3))
            rows[f"{threads} threads"] = {
                "wall_us_per_item": round(wall / len(items) * 1e6, 1),
                "cpu_us_per_item": round(cpu / len(items) * 1e6, 1),
            }
        cache.close()
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
