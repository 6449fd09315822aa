"""An OpenAI-compatible endpoint with a fixed latency, run as its own process for the benchmark.

    python bench/latency_server.py --latency 0.05 --ready FILE --stamps FILE

It stands for a model server that is never CPU-bound: asyncio, keep-alive HTTP/1.1, a canned
answer and no parsing beyond the header block: it shares the two cores with the client, so its
own Python per request is kept as small as it can be, and the measured rate is the client's.
Writes its API base to the --ready file once listening; on SIGTERM writes the monotonic time of
every answered request to the --stamps file (JSON), so throughput can exclude start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

ANSWER = {"role": "assistant", "content": "The right answer is A: 1"}
BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [{"index": 0, "message": ANSWER, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
    }
).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)


async def serve(latency: float, ready: Path, stamps: list[float]) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                stamps.append(time.monotonic())
                writer.write(RESPONSE)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()  # the client left, or the server is stopping with connections open

    server = await asyncio.start_server(connection, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    ready.write_text(f"http://127.0.0.1:{port}/v1")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--stamps", required=True)
    args = parser.parse_args()
    stamps: list[float] = []
    asyncio.run(serve(args.latency, Path(args.ready), stamps))
    Path(args.stamps).write_text(json.dumps(stamps))


if __name__ == "__main__":
    main()
