"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, with scripted answers and faults."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    content: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # a raw JSON body instead of a chat completion
    raw: bytes | None = None  # bytes sent as they are (malformed JSON)
    hang_s: float = 0.0  # wait this long before answering
    drop: bool = False  # close the connection without any answer
    trickle_s: float = 0.0  # send the body one byte at a time, this long apart
    finish_reason: str = "stop"


Responder = Callable[[dict[str, Any], int], Reply]


def echo_last_user(request: dict[str, Any], number: int) -> Reply:
    """Answer with the last user message, so every prompt gets its own distinct answer."""
    users = [m["content"] for m in request["messages"] if m["role"] == "user"]
    return Reply(content=f"echo: {users[-1] if users else ''}")


class OpenAIServer:
    """``/v1/chat/completions`` on a free loopback port; records every request it receives."""

    def __init__(self, responder: Responder = echo_last_user) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.user_agents: list[str] = []  # each request's, in order: which client made the call
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # without it each request costs ~40 ms
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(request)
                    server.user_agents.append(self.headers.get("user-agent", ""))
                    number = len(server.requests)
                reply = server.responder(request, number)
                if reply.hang_s:
                    time.sleep(reply.hang_s)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = reply.body if reply.body is not None else _completion(request, reply)
                payload = reply.raw if reply.raw is not None else json.dumps(body).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not reply.trickle_s:
                    self.wfile.write(payload)
                for byte in payload if reply.trickle_s else b"":
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(reply.trickle_s)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def served_by(server: OpenAIServer) -> list[str]:
    """Options that make one local server the model, the judge and the patient agent."""
    base = server.api_base
    return [
        "--model=openai/doctor",
        f"--api-base={base}",
        "--judge-model=openai/examiner",
        f"--judge-api-base={base}",
    ]


def _completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    if reply.status != 200:
        return {"error": {"message": reply.content, "type": "test_error", "code": reply.status}}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "test"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content},
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


CONTENT_FILTERED = {
    "error": {
        "message": "The response was filtered due to the prompt triggering the content management policy.",
        "type": "invalid_request_error",
        "code": "content_filter",
    }
}
FAULTS = ("rate_limit", "server_500", "server_503", "hang", "drop", "malformed_json", "empty", "refusal")


class FaultInjector:
    """Answers like ``answer`` but turns a share of requests into faults, chosen reproducibly."""

    def __init__(
        self, share: float, *, hang_s: float = 2.0, seed: int = 0, answer: Responder = echo_last_user
    ):
        self.share, self.hang_s, self.seed, self.answer = share, hang_s, seed, answer
        self.injected: dict[str, int] = {}

    def fault(self, number: int) -> str | None:
        rng = random.Random(f"{self.seed}:{number}")
        return rng.choice(FAULTS) if rng.random() < self.share else None

    def __call__(self, request: dict[str, Any], number: int) -> Reply:
        kind = self.fault(number)
        if kind is None:
            return self.answer(request, number)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return {
            "rate_limit": Reply(status=429, content="slow down", headers={"Retry-After": "0"}),
            "server_500": Reply(status=500, content="internal error"),
            "server_503": Reply(status=503, content="overloaded"),
            "hang": Reply(hang_s=self.hang_s, content="too late"),
            "drop": Reply(drop=True),
            "malformed_json": Reply(raw=b'{"id": "x", "choices": [{"mess'),
            "empty": Reply(content=""),
            "refusal": Reply(status=400, body=CONTENT_FILTERED),
        }[kind]
