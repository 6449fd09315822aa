"""An OpenAI-compatible server with a fixed latency, run as its own process for the benchmark.

    python bench/latency_server.py --latency 0.05 --ready FILE --stamps FILE

Writes its API base to the --ready file once listening; on SIGTERM writes the monotonic time of
every answered request to the --stamps file (JSON), so throughput can exclude start-up.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from openai_server import OpenAIServer, Reply

ANSWER = "The right answer is A: 1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--stamps", required=True)
    args = parser.parse_args()
    stamps: list[float] = []
    lock = threading.Lock()

    def respond(request: dict, number: int) -> Reply:
        time.sleep(args.latency)
        with lock:
            stamps.append(time.monotonic())
        return Reply(content=ANSWER)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with OpenAIServer(respond) as server:
        Path(args.ready).write_text(server.api_base)
        stop.wait()
    Path(args.stamps).write_text(json.dumps(stamps))


if __name__ == "__main__":
    main()
