"""An OpenAI-compatible endpoint with a fixed latency, run as its own process for the benchmark.

    python bench/latency_server.py --latency 0.05 --ready FILE --stamps FILE [--medr]

It stands for a model server that is never CPU-bound: asyncio, keep-alive HTTP/1.1, a canned
answer and no parsing beyond the header block: it shares the two cores with the client, so its
own Python per request is kept as small as it can be, and the measured rate is the client's.
With --medr it plays every part of a MedR-Bench free-turn dialogue instead (the model, the patient
agent, the judge): it reads the request and answers by the wording of its last message (``SCRIPT``),
so each reply is one the dialogue, the agent and the judge protocols accept.
Writes its API base to the --ready file once listening; on SIGTERM writes the monotonic time of
every answered request to the --stamps file (JSON), so throughput can exclude start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
import zlib
from pathlib import Path

ANSWER = "The right answer is A: 1"  # every MCQA item of bench/throughput.py's data
# --medr: (words the last message of a request holds, the reply), the first match wins; our own
# prompt wording (pytest_medbench/prompts/templates). Any other request is the evaluated model's turn.
SCRIPT = (
    ("The colleague asks for:", "Complete blood count: haemoglobin 13.1 g/dL, white cells 7.2 x10^9/L."),
    (
        "List each separate test",
        '[{"type": "laboratory", "test_name": "Complete blood count", "info_required": "anaemia"}]',
    ),
    ("Is the following test", "Yes"),
    ("Does the predicted diagnosis", "Correct"),
)
# The model asks for another test on every turn, so each dialogue runs its full 5 model turns and 4
# agent replies (the longest chain the protocol allows); its turns name the case (a digest of the
# first prompt), so no two requests of the whole run are alike and none is served from a cache.
TURN = (
    "### Chain of Thought:\n<step 1> The findings so far suggest a thyroid cause.\n"
    "### Additional Information Required:\n1. Test number {turn} for case {case}\n"
    "### Conclusion:\nGraves disease (case {case})"
)


def response(content: str) -> bytes:
    body = json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27},
        }
    ).encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


RESPONSE = response(ANSWER)
SCRIPTED = [(words, response(reply)) for words, reply in SCRIPT]


def scripted(body: bytes) -> bytes:
    messages = json.loads(body)["messages"]
    last = messages[-1]["content"]
    for words, answer in SCRIPTED:
        if words in last:
            return answer
    case = zlib.crc32(messages[1]["content"].encode())
    return response(TURN.format(turn=sum(message["role"] == "assistant" for message in messages), case=case))


async def serve(latency: float, ready: Path, stamps: list[float], medr: bool = False) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                await asyncio.sleep(latency)
                stamps.append(time.monotonic())
                writer.write(scripted(body) if medr else RESPONSE)
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
    parser.add_argument("--medr", action="store_true", help="answer as MedR-Bench's model, agent and judge")
    args = parser.parse_args()
    stamps: list[float] = []
    asyncio.run(serve(args.latency, Path(args.ready), stamps, args.medr))
    Path(args.stamps).write_text(json.dumps(stamps))


if __name__ == "__main__":
    main()
