"""CPU per model call on the client's side (not a test): the figures docs/performance.md cites.

    python bench/call_overhead.py [--calls 500]

Sends sequential chat requests to bench/latency_server.py with no latency and reports the calling
process's CPU time per call for: the lean HTTP transport, the litellm transport, and (for
comparison, since the lean path once used it) one shared httpx client.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import Server

from pytest_medbench.models.transport import Endpoint, HTTPTransport, LitellmTransport

MESSAGES = [{"role": "user", "content": "Question: Which number is 7?\nOptions: A: 7\tB: 8"}]


def cpu_ms_per_call(send, calls: int) -> float:
    send()  # connect, import and warm up outside the measurement
    started = time.process_time()
    for _ in range(calls):
        send()
    return round((time.process_time() - started) / calls * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(0.0, Path(tmp))
        endpoint = Endpoint("openai/bench", server.api_base)
        lean, through_litellm = HTTPTransport(endpoint), LitellmTransport(endpoint)
        import httpx

        client = httpx.Client()
        body = {"model": "bench", "messages": MESSAGES}
        rows = {
            "lean HTTP transport": cpu_ms_per_call(lambda: lean.send(MESSAGES, {}, 30, None), args.calls),
            "litellm transport": cpu_ms_per_call(
                lambda: through_litellm.send(MESSAGES, {}, 30, None), args.calls
            ),
            "shared httpx client": cpu_ms_per_call(
                lambda: client.post(f"{server.api_base}/chat/completions", json=body).json(), args.calls
            ),
        }
        server.finish()
    print(json.dumps({"cpu_ms_per_call": rows}, indent=1))


if __name__ == "__main__":
    main()
