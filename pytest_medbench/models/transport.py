"""How one chat request reaches a model: through litellm, or straight over HTTP.

litellm routes every provider, but spends about 4 ms of Python per call (request building,
logging hooks, response conversion: ``bench/call_overhead.py``), which caps one process near 200
calls/s. A self-hosted OpenAI-compatible endpoint (vLLM, llama.cpp, a proxy: ``openai/...`` or
``hosted_vllm/...`` with an api_base, reached without a proxy) needs none of that, so it gets a
lean path: about 0.1 ms of this process's CPU per call, and no litellm import at all. Every other
model keeps litellm's coverage. Retries, the cache and error classification stay in the client, the
same for both paths.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import http_process
from .http_inline import InlineHTTP
from .litellm_import import import_litellm
from .secrets import mask, without_userinfo

# provider prefix -> the environment variable litellm reads its key from
LEAN_PROVIDERS = {"openai": "OPENAI_API_KEY", "hosted_vllm": "HOSTED_VLLM_API_KEY"}


@dataclass(frozen=True)
class Endpoint:
    """One deployment of a model: its litellm id, where it is served, and its key (if not the env's)."""

    model: str
    api_base: str | None = None
    api_key: str | None = None

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0] if "/" in self.model else ""

    @property
    def lean(self) -> bool:
        """An OpenAI-compatible server at a known address, reached directly: no provider logic is
        needed (litellm's path honours proxy settings, the lean one does not)."""
        if not self.api_base or self.provider not in LEAN_PROVIDERS:
            return False
        parts = urllib.parse.urlsplit(self.api_base)
        proxied = parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
            parts.hostname or ""
        )
        return parts.scheme in ("http", "https") and not proxied

    def key(self) -> str:
        """The bearer key: the endpoint's own, else the provider's variable; local servers need none."""
        return self.api_key or os.environ.get(LEAN_PROVIDERS.get(self.provider, ""), "") or "no-key"


@dataclass(frozen=True)
class Answer:
    """What a provider sent back, before the client decides whether it is usable."""

    text: str
    reasoning: str | None = None
    finish_reason: str | None = None
    refused: bool = False
    # why a 200 carried no answer at all (an error body, no choices, content null), else None
    no_content: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    # where the answer came from, kept with it in the cache: the endpoint asked (no userinfo), the
    # model id the endpoint reported serving, and its system_fingerprint where it gives one
    api_base: str | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None


class Transport(Protocol):
    def send(
        self, messages: list[dict[str, str]], params: dict[str, Any], timeout_s: float, context: dict | None
    ) -> Answer: ...


class HTTPStatusError(Exception):
    """A non-2xx answer; named and shaped like the provider errors ``classify`` already knows."""

    def __init__(self, status_code: int, message: str, headers: Any) -> None:
        super().__init__(message)
        self.status_code, self.message, self.headers = status_code, message, headers


class Timeout(Exception):
    """The endpoint did not answer within the timeout (litellm's name: ``classify`` knows it)."""


class APIConnectionError(Exception):
    """The connection failed or dropped (litellm's name: ``classify`` knows it)."""


class HTTPTransport:
    """POST ``{api_base}/chat/completions``: in the calling thread (``http_inline``), or, for a
    process that keeps many calls in flight, through a process of its own (``http_process``).

    litellm's path costs several ms of Python a call. The standard library's client in the calling
    thread costs about 0.1 ms sequentially, but 0.26 ms of the process's CPU a call with 64 threads
    calling at once; handing the call to the HTTP process costs the calling process 0.14 ms, the HTTP
    work (0.24 ms) being done on another core. At 64 calls in flight on one core's worth of Python,
    that decides how near the endpoint's rate a run gets; where the cores are busy with other
    workers, the extra process only adds work (``bench/call_overhead.py``, docs/performance.md).
    """

    def __init__(self, endpoint: Endpoint, *, in_own_process: bool = False) -> None:
        self.endpoint = endpoint
        self.url = endpoint.api_base.rstrip("/") + "/chat/completions"  # type: ignore[union-attr]
        parts = urllib.parse.urlsplit(self.url)
        # userinfo stays out of the request (the key goes in a header); messages name self.url, masked
        self._post_url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.model = endpoint.model.split("/", 1)[1]
        self.headers = {"authorization": f"Bearer {endpoint.key()}", "content-type": "application/json"}
        self._prices = _prices(endpoint.model)  # once here, not by every thread on its first answer
        self.in_own_process = in_own_process
        if in_own_process:
            http_process.shared()  # started now, so that it is ready by the first call
        else:
            self._inline = InlineHTTP(self._post_url)

    def _post(self, body: bytes, timeout_s: float) -> tuple[int, Any, bytes]:
        try:
            if self.in_own_process:
                return http_process.shared().post(self._post_url, self.headers, body, timeout_s)
            return self._inline.post(self.headers, body, timeout_s)
        except TimeoutError:
            raise Timeout(f"{self.url} timed out after {timeout_s:g} s") from None
        except ConnectionError as exc:
            raise APIConnectionError(f"{self.url}: {exc}") from None
        except ValueError as exc:  # a request that cannot be sent as given: not retried
            raise ValueError(f"{self.url}: {exc}") from None

    def send(
        self, messages: list[dict[str, str]], params: dict[str, Any], timeout_s: float, context: dict | None
    ) -> Answer:
        request = {"model": self.model, "messages": messages, **params}
        try:
            body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: see _sendable (searched for only then)
            request["messages"] = _sendable(messages)
            body = json.dumps(request, ensure_ascii=False).encode("utf-8")
        status, headers, data = self._post(body, timeout_s)
        if status >= 300:
            raise HTTPStatusError(status, _error_text(status, data), headers)
        # as litellm has it: a body that is not a chat completion (not JSON, no `choices`, a message
        # that is not an object, content neither text nor null) is a server error, retried
        try:
            payload = json.loads(data)
            if not isinstance(payload, dict):
                raise TypeError("not an object")
            if payload.get("error") and not payload.get("choices"):  # a 200 with an error body
                return Answer(text="", no_content=_missing_answer(payload["error"]), **self._usage(payload))
            choices = payload["choices"]
            if isinstance(choices, list) and not choices:  # `choices: []`: a 200 with no answer
                return Answer(text="", no_content=_missing_answer(None), **self._usage(payload))
            choice = choices[0]
            message = choice["message"]
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError(f"content is {type(content).__name__}")
            finish_reason = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            text = f"{self.url} sent something other than a chat completion"
            raise HTTPStatusError(502, text, headers) from exc
        if content is None:
            return Answer(
                text="",
                finish_reason=finish_reason,
                refused=bool(message.get("refusal")),
                no_content=_null_content(finish_reason, message.get("tool_calls")),
                **self._usage(payload),
            )
        return Answer(
            text=content,
            reasoning=message.get("reasoning_content") or message.get("reasoning"),
            finish_reason=finish_reason,
            refused=bool(message.get("refusal")),
            api_base=without_userinfo(self.endpoint.api_base),
            served_model=payload.get("model"),
            system_fingerprint=payload.get("system_fingerprint"),
            **self._usage(payload),
        )

    def _usage(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The Answer's token counts and cost from a body's ``usage``, priced as litellm prices
        them (cached prompt tokens at the cache-read price)."""
        prompt_tokens, completion_tokens, cached_tokens = token_counts(payload.get("usage"))
        input_price, output_price, cached_price = self._prices
        cost = (
            (prompt_tokens - cached_tokens) * input_price
            + cached_tokens * cached_price
            + completion_tokens * output_price
        )
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cost_usd": cost}


def token_counts(usage: Any) -> tuple[int, int, int]:
    """(prompt, completion, cached prompt) tokens from a ``usage`` (a dict or litellm's object): a
    count that is not a non-negative integer (negative, fractional, a string) is taken as absent, 0,
    since the leaderboard's schema holds only such counts (a negative one failed it at session end)."""
    if usage is None:
        return 0, 0, 0

    def get(owner: Any, name: str) -> Any:
        return owner.get(name) if isinstance(owner, dict) else getattr(owner, name, None)

    prompt_tokens = _count(get(usage, "prompt_tokens"))
    details = get(usage, "prompt_tokens_details")
    cached_tokens = _count(get(details, "cached_tokens")) if details is not None else 0
    return prompt_tokens, _count(get(usage, "completion_tokens")), min(cached_tokens, prompt_tokens)


def _count(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if type(value) is int and value >= 0 else 0


class LitellmTransport:
    """``litellm.completion`` for every provider but the built-in models."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._litellm: Any = None

    def send(
        self, messages: list[dict[str, str]], params: dict[str, Any], timeout_s: float, context: dict | None
    ) -> Answer:
        if self._litellm is None:
            self._litellm = import_litellm()
        kwargs: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": _sendable(messages),
            "timeout": timeout_s,
            "num_retries": 0,  # retries are ours: litellm's reset themselves after an exhausted call
            "max_retries": 0,  # and the OpenAI SDK's own retries would multiply ours
            **params,
        }
        if self.endpoint.api_base:
            kwargs["api_base"] = self.endpoint.api_base
        if self.endpoint.api_key or (self.endpoint.api_base and self.endpoint.provider in LEAN_PROVIDERS):
            kwargs["api_key"] = self.endpoint.key()  # the SDK insists on one, local servers need none
        try:
            response = _within(timeout_s, functools.partial(self._litellm.completion, **kwargs))
        except Exception as exc:
            if (body_error := _error_body(exc)) is None:
                raise
            return Answer(text="", no_content=_missing_answer(body_error))
        prompt_tokens, completion_tokens, _ = token_counts(getattr(response, "usage", None))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        if not response.choices:
            return Answer(text="", no_content=_missing_answer(None), **usage, cost_usd=self._cost(response))
        choice = response.choices[0]
        message = choice.message
        if message.content is None:
            finish_reason = getattr(choice, "finish_reason", None)
            return Answer(
                text="",
                finish_reason=finish_reason,
                refused=bool(getattr(message, "refusal", None)),
                no_content=_null_content(finish_reason, getattr(message, "tool_calls", None)),
                **usage,
                cost_usd=self._cost(response),
            )
        return Answer(
            text=message.content or "",
            reasoning=getattr(message, "reasoning_content", None) or None,
            finish_reason=getattr(choice, "finish_reason", None),
            refused=bool(getattr(message, "refusal", None)),
            **usage,
            cost_usd=self._cost(response),
            api_base=without_userinfo(self.endpoint.api_base),
            served_model=getattr(response, "model", None),
            system_fingerprint=getattr(response, "system_fingerprint", None),
        )

    def _cost(self, response: Any) -> float:
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            try:
                cost = self._litellm.completion_cost(completion_response=response)
            except Exception:  # a local model has no price: it cost nothing we can know
                cost = 0.0
        try:
            cost = float(cost or 0.0)
        except (TypeError, ValueError):
            return 0.0
        return cost if math.isfinite(cost) and cost >= 0 else 0.0  # priced from a bad usage: unknown


def _missing_answer(error: Any) -> str:
    """What a 200 without choices said: its error body's message, or that it had none."""
    if isinstance(error, dict):
        error = error.get("message") or error
    return f"a 200 with an error body: {error}" if error else "a 200 with no choices"


def _null_content(finish_reason: str | None, tool_calls: Any) -> str:
    tools = "tool calls returned" if tool_calls else "no tool calls"
    return f"content null (finish_reason {finish_reason}, {tools})"


def _error_body(exc: BaseException) -> str | None:
    """The message of a 200 whose body was an error, as litellm raises it: a bare Exception with a
    ``status_code`` and ``message`` (``convert_to_model_response_object``), wrapped in its own."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:
        if type(cause) is Exception and hasattr(cause, "status_code"):
            return str(getattr(cause, "message", "") or "")
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _within(timeout_s: float, call: Any) -> Any:
    """``call()``, or Timeout once ``timeout_s`` has passed without its result. litellm's timeout
    (httpx's) bounds each read, not the call, so a trickling body would never end it; the call runs
    in a daemon thread (about 0.1 ms to start, against litellm's 4 ms a call), left behind when late."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # re-raised in the caller's thread, as it was
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise Timeout(f"no complete answer within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


_SURROGATE = re.compile("[\ud800-\udfff]")


def _sendable(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """``messages`` with each lone surrogate (a data file's broken escape) in a text replaced by
    U+FFFD, on both paths. UTF-8 cannot carry one: litellm's OpenAI client sends UTF-8 JSON (httpx
    0.28) and failed ("'utf-8' codec can't encode", a server error, retried); sent as its JSON
    escape, strict parsers refuse it (pydantic-core: "unexpected end of hex escape"). The cache key
    is made before, from the messages as they were."""
    if not any(isinstance(m.get("content"), str) and _SURROGATE.search(m["content"]) for m in messages):
        return messages
    return [
        {**m, "content": _SURROGATE.sub("\ufffd", m["content"])} if isinstance(m.get("content"), str) else m
        for m in messages
    ]


def transport_for(endpoint: Endpoint, *, in_own_process: bool = False) -> Transport:
    """The lean path where it serves (its calls in the HTTP process if ``in_own_process``), litellm
    everywhere else."""
    if endpoint.lean:
        return HTTPTransport(endpoint, in_own_process=in_own_process)
    return LitellmTransport(endpoint)


def _error_text(status: int, data: bytes) -> str:
    """The provider's error message (OpenAI shape), else the start of the body, masked before it is
    cut (the message is masked where it is classified, whole)."""
    try:
        error = json.loads(data).get("error")
        text = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        text = None
    return f"HTTP {status}: {text or mask(data.decode('utf-8', 'replace'))[:300]}"


@functools.cache
def _price_table() -> dict[str, Any]:
    """litellm's bundled price map, read as data: importing litellm for it would cost seconds."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _prices(model: str) -> tuple[float, float, float]:
    """litellm's (input, output, cached input) price per token for a known model behind a compatible
    endpoint (``openai/gpt-4o`` via a proxy); 0 for a model it does not price, as litellm reports."""
    table = _price_table()
    entry = table.get(model) or table.get(model.split("/", 1)[1]) or {}
    input_price = entry.get("input_cost_per_token") or 0.0
    cached_price = entry.get("cache_read_input_token_cost")
    return (
        input_price,
        entry.get("output_cost_per_token") or 0.0,
        input_price if cached_price is None else cached_price,
    )
