"""A fake Hugging Face Hub on 127.0.0.1 for the fetch tests (point ``HF_ENDPOINT`` at ``url``).

It serves what huggingface_hub's client asks for: ``/api/datasets/<repo>/revision/<rev>`` (the commit),
``/api/datasets/<repo>/tree/<commit>`` (the listing with each file's git blob sha1, and ``lfs`` sha256
for LFS files) and ``/datasets/<repo>/resolve/<commit>/<path>`` (HEAD and ranged GET, with the
``X-Repo-Commit``, ``ETag`` / ``X-Linked-Etag`` and ``X-Linked-Size`` headers the client reads).
Faults: ``truncate_once`` drops the connection half-way through a file's first download;
``corrupt`` serves other bytes of the same size. Every request is logged.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


def git_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo -> commit -> path -> bytes
        self.branches: dict[str, dict[str, str]] = {}  # repo -> branch -> commit
        self.lfs: set[str] = set()  # paths stored in LFS (the rest are small git files)
        self.truncate_once: set[str] = set()
        self.corrupt: dict[str, bytes] = {}
        self.forbidden: set[str] = set()  # paths answered with 403
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.authorizations: dict[str, str | None] = {}  # path -> its Authorization header
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

            def do_GET(self) -> None:
                hub._handle(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_commit(self, repo: str, commit: str, files: dict[str, bytes], branch: str = "main") -> None:
        self.repos.setdefault(repo, {})[commit] = files
        self.branches.setdefault(repo, {})[branch] = commit

    def requested_paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- request handling --------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        with self._lock:
            self.requests.append(("HEAD" if head else "GET", path, handler.headers.get("Range")))
            self.authorizations[path] = handler.headers.get("Authorization")
        for prefix, route in (("/api/datasets/", self._api), ("/datasets/", self._resolve)):
            if path.startswith(prefix):
                route(handler, path[len(prefix) :], head)
                return
        self._send(handler, 404, b"not found", {"X-Error-Code": "EntryNotFound"})

    def _commit(self, repo: str, revision: str) -> str | None:
        commits = self.repos.get(repo, {})
        return revision if revision in commits else self.branches.get(repo, {}).get(revision)

    def _api(self, handler: BaseHTTPRequestHandler, rest: str, head: bool) -> None:
        owner, name, kind, revision, *sub = rest.split("/")
        repo = f"{owner}/{name}"
        if repo not in self.repos:
            self._send(handler, 404, b'{"error": "no repo"}', {"X-Error-Code": "RepoNotFound"})
            return
        commit = self._commit(repo, revision)
        if commit is None:
            self._send(handler, 404, b'{"error": "no revision"}', {"X-Error-Code": "RevisionNotFound"})
            return
        files = self.repos[repo][commit]
        if kind == "revision":
            body = {"id": repo, "sha": commit, "siblings": [{"rfilename": p} for p in files]}
        else:  # tree, always recursive here
            prefix = "/".join(sub).strip("/")
            body = self._tree(files, prefix)
        self._send(handler, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _tree(self, files: dict[str, bytes], prefix: str) -> list[dict]:
        entries, folders = [], set()
        for path, content in sorted(files.items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            parts = path.split("/")
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            entry = {"type": "file", "oid": git_sha1(content), "size": len(content), "path": path}
            if path in self.lfs:
                sha256 = hashlib.sha256(content).hexdigest()
                entry["lfs"] = {"oid": sha256, "size": len(content), "pointerSize": 134}
            entries.append(entry)
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)]
        return entries

    def _resolve(self, handler: BaseHTTPRequestHandler, rest: str, head: bool) -> None:
        owner, name, resolve, revision, *parts = rest.split("/")
        repo, path = f"{owner}/{name}", "/".join(parts)
        commit = self._commit(repo, revision) if repo in self.repos else None
        if resolve != "resolve" or commit is None or path not in self.repos[repo][commit]:
            self._send(handler, 404, b"not found", {"X-Error-Code": "EntryNotFound"})
            return
        if path in self.forbidden:
            self._send(handler, 403, b"forbidden", {"X-Error-Message": "blocked"})
            return
        content = self.repos[repo][commit][path]
        headers = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if path in self.lfs:
            headers["X-Linked-Etag"] = f'"{hashlib.sha256(content).hexdigest()}"'
            headers["X-Linked-Size"] = str(len(content))
        else:
            headers["ETag"] = f'"{git_sha1(content)}"'
        served = self.corrupt.get(path, content)
        if head:
            self._send(handler, 200, b"", headers | {"Content-Length": str(len(served))}, body=False)
            return
        start = 0
        ranged = handler.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            start = int(ranged[len("bytes=") :].split("-")[0])
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(served) - 1}/{len(served)}"
        body = served[start:]
        with self._lock:
            truncate = path in self.truncate_once
            self.truncate_once.discard(path)
        if truncate:  # promise the whole body, send half, hang up
            handler.send_response(status)
            for key, value in (headers | {"Content-Length": str(len(body))}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        self._send(handler, status, body, headers)

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict, body: bool = True
    ) -> None:
        handler.send_response(status)
        headers = {"Content-Length": str(len(payload))} | headers
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(payload)
