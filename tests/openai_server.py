"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, with scripted answers and faults."""

from __future__ import annotations

import json
import threading
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
                    number = len(server.requests)
                reply = server.responder(request, number)
                body = reply.body if reply.body is not None else _completion(request, reply)
                payload = json.dumps(body).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

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


def _completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    if reply.status != 200:
        return {"error": {"message": reply.content, "type": "test_error", "code": reply.status}}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "test"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": reply.content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
