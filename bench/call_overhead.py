"""CPU per model call on the client's side (not a test): the figures docs/performance.md cites.

    python bench/call_overhead.py [--calls 500] [--threads 64] [--latency 0.05]

Against bench/latency_server.py: sequential calls with no latency, then ``--threads`` threads calling
at once against ``--latency``, as the prefetch pool does. Reports the calling process's CPU time per
call for the lean HTTP transport both ways (through its HTTP process, whose own CPU per call is given
too, read from /proc on Linux; and in the calling thread, the standard library's http.client with
one kept-alive connection per thread), and for the litellm transport.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import Server

from pytest_medbench.models import http_process
from pytest_medbench.models.transport import Endpoint, HTTPTransport, LitellmTransport

MESSAGES = [{"role": "user", "content": "Question: Which number is 7?\nOptions: A: 7\tB: 8"}]


def child_cpu_s() -> float:
    """CPU seconds the lean transport's HTTP process has used (Linux), else NaN."""
    try:
        stat = Path(f"/proc/{http_process.shared()._process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ms_per_call(send, calls: int, threads: int = 1) -> tuple[float, float]:
    """(this process's, the HTTP process's) CPU ms per call."""
    send()  # connect, import and warm up outside the measurement
    started, child_started = time.process_time(), child_cpu_s()
    if threads == 1:
        for _ in range(calls):
            send()
    else:
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(lambda _: send(), range(calls)):
                pass
    per_call = lambda seconds: round(seconds / calls * 1000, 3)  # noqa: E731
    return per_call(time.process_time() - started), per_call(child_cpu_s() - child_started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for latency, threads in ((0.0, 1), (args.latency, args.threads)):
            server = Server(latency, Path(tmp))
            endpoint = Endpoint("openai/bench", server.api_base)
            through_process = HTTPTransport(endpoint, in_own_process=True)
            inline = HTTPTransport(endpoint)
            how = "sequential" if threads == 1 else f"{threads} threads, {latency * 1000:g} ms latency"
            calls = args.calls if threads == 1 else args.calls * 8
            mine, child = cpu_ms_per_call(
                lambda send=through_process.send: send(MESSAGES, {}, 30, None), calls, threads
            )
            rows[f"lean HTTP transport through its HTTP process, {how}: this process"] = mine
            rows[f"lean HTTP transport through its HTTP process, {how}: the HTTP process"] = child
            rows[f"lean HTTP transport in the calling thread, {how}"] = cpu_ms_per_call(
                lambda send=inline.send: send(MESSAGES, {}, 30, None), calls, threads
            )[0]
            if threads == 1:
                through_litellm = LitellmTransport(endpoint)
                rows["litellm transport, sequential"] = cpu_ms_per_call(
                    lambda send=through_litellm.send: send(MESSAGES, {}, 30, None), calls
                )[0]
            http_process.close_shared()
            server.finish()
    print(json.dumps({"cpu_ms_per_call": rows}, indent=1))


if __name__ == "__main__":
    main()
