"""The one model layer: litellm for every model (built-ins included), with retries, timeouts and a cache.

litellm is imported on the first call, never at plugin load (it costs seconds).
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .aliases import resolve
from .cache import ResponseCache, cache_key
from .errors import ModelCallError
from .ratelimit import SharedRateLimit

BUILTIN_PREFIX = "medbench/"
REPLAY_PREFIX = "replay:"
MAX_RETRY_AFTER_S = 120.0
KEYLESS_PROVIDERS = ("openai/", "hosted_vllm/")


@dataclass(frozen=True)
class GenerationParams:
    """Parameters that change an answer, so they are part of the cache key."""

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class ModelSpec:
    """What ``--model`` names, resolved to the litellm call it makes."""

    name: str  # as the user wrote it
    litellm_model: str
    api_base: str | None = None
    builtin: bool = False

    @classmethod
    def parse(
        cls, name: str, api_base: str | None = None, aliases: dict[str, str] | None = None
    ) -> ModelSpec:
        """``name`` as the user wrote it: a built-in, ``replay:PATH``, an alias, or a litellm model id."""
        if name.startswith(REPLAY_PREFIX):
            path = os.path.abspath(name[len(REPLAY_PREFIX) :])
            return cls(name, "medbench/replay", api_base=path, builtin=True)
        if name.startswith(BUILTIN_PREFIX):
            return cls(name, name, builtin=True)
        return cls(name, resolve(name, aliases), api_base=api_base)


@dataclass(frozen=True)
class Completion:
    text: str
    reasoning: str | None = None  # provider "thinking" text, kept apart from the answer
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False

    def to_cache(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("cached")
        return record

    @classmethod
    def from_cache(cls, record: dict[str, Any]) -> Completion:
        return cls(**record, cached=True)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        base = min(self.backoff_s * 2**attempt, self.max_backoff_s)
        return base * (0.5 + random.random() / 2)


def import_litellm() -> Any:
    """Import litellm configured for offline use: the cost map from the package, no hub downloads."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import litellm

    from . import builtin

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    builtin.register(litellm)
    return litellm


class ModelClient:
    """Answers chat requests for one model: cache first, then litellm with bounded retries."""

    def __init__(
        self,
        spec: ModelSpec,
        params: GenerationParams,
        *,
        cache: ResponseCache | None,
        timeout_s: float,
        retry: RetryPolicy,
        limit: SharedRateLimit | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec = spec
        self.limit = limit
        self.params = params
        self.cache = None if spec.builtin else cache
        self.timeout_s = timeout_s
        self.retry = retry
        self._sleep = sleep
        self._litellm: Any = None
        self._fatal: ModelCallError | None = None

    def complete(
        self, messages: list[dict[str, str]], *, epoch: int = 0, context: dict | None = None
    ) -> Completion:
        """One answer to ``messages``; raises ModelCallError when none can be had.

        ``context`` describes the item for the built-in models only; it never reaches a real provider.
        """
        if self._fatal is not None:
            raise self._fatal
        # the resolved model id, not the alias (an alias may move); not the endpoint (a restarted local
        # server on a new port, or another replica, serves the same model)
        request = {"model": self.spec.litellm_model, "params": self.params.as_kwargs(), "messages": messages}
        key = cache_key({**request, "epoch": epoch})
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return Completion.from_cache(hit)
        completion = self._call_with_retries(messages, context)
        if self.cache is not None:
            self.cache.put(key, self.spec.name, completion.to_cache())
        return completion

    def _call_with_retries(self, messages: list[dict[str, str]], context: dict | None) -> Completion:
        if self._litellm is None:
            self._litellm = import_litellm()
        kwargs: dict[str, Any] = {
            "model": self.spec.litellm_model,
            "messages": messages,
            "timeout": self.timeout_s,
            "num_retries": 0,  # retries are ours: litellm's reset themselves after an exhausted call
            "max_retries": 0,  # and the OpenAI SDK's own retries would multiply ours
            **self.params.as_kwargs(),
        }
        if self.spec.api_base:
            kwargs["api_base"] = self.spec.api_base
            if self.spec.litellm_model.startswith(KEYLESS_PROVIDERS) and not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = "no-key"  # local OpenAI-compatible servers need none, the SDK insists
        if self.spec.builtin:
            kwargs["metadata"] = {"medbench": context or {}}
        started = time.perf_counter()
        attempt = 0
        while True:
            call_id = self.limit.acquire() if self.limit else None
            try:
                response = self._litellm.completion(**kwargs)
                completion = self._completion(response, time.perf_counter() - started)
                if self.limit:
                    self.limit.used(call_id, completion.prompt_tokens + completion.completion_tokens)
                return completion
            except Exception as exc:
                error, retryable, retry_after = classify(exc, self.spec.name, attempt + 1)
                if not retryable or attempt >= self.retry.max_retries:
                    if error.fatal:
                        self._fatal = error
                    raise error from exc
                delay = self.retry.delay(attempt, retry_after)
                if self.limit and error.kind == "rate_limit":
                    self.limit.pause(delay)  # every worker backs off, not just this one
                self._sleep(delay)
                attempt += 1

    def _completion(self, response: Any, latency_s: float) -> Completion:
        choice = response.choices[0]
        message = choice.message
        text = message.content or ""
        reasoning = getattr(message, "reasoning_content", None)
        if not text.strip():
            if getattr(choice, "finish_reason", None) == "content_filter" or getattr(
                message, "refusal", None
            ):
                raise _Refused("the provider's content filter withheld the answer")
            raise _Empty("the model returned no content")
        usage = getattr(response, "usage", None)
        return Completion(
            text=text,
            reasoning=reasoning or None,
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            cost_usd=0.0 if self.spec.builtin else self._cost(response),
            latency_s=round(latency_s, 4),
        )

    def _cost(self, response: Any) -> float:
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            try:
                cost = self._litellm.completion_cost(completion_response=response)
            except Exception:  # a local model has no price: it cost nothing we can know
                cost = 0.0
        return float(cost or 0.0)


class _Empty(Exception):
    """An answer with no content: retried, since it is usually transient."""


class _Refused(Exception):
    """A content-filter refusal: not retried, since the same prompt gets the same refusal."""


def _retry_after(exc: Exception) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date) on the error, if any."""
    candidates: list[Any] = [getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None)]
    response = getattr(exc, "response", None)
    candidates.append(getattr(response, "headers", None))
    for headers in candidates:
        if not headers:
            continue
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(str(value))
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    return None


_FILTER_MARKS = ("content management policy", "content_filter", "content_policy_violation")
_FAIL_FAST = {401: "auth", 403: "auth", 404: "not_found", 400: "bad_request", 422: "bad_request"}


def classify(exc: Exception, model: str, attempts: int) -> tuple[ModelCallError, bool, float | None]:
    """(error for the report, whether to retry, Retry-After seconds) for an exception from a call."""
    if (builtin_error := _builtin_error(exc)) is not None:
        builtin_error.model, builtin_error.attempts = model, attempts
        return builtin_error, False, None
    if isinstance(exc, _Empty):
        return ModelCallError("empty", str(exc), model=model, attempts=attempts), True, None
    if isinstance(exc, _Refused):
        return ModelCallError("content_filter", str(exc), model=model, attempts=attempts), False, None
    message = _clean_message(exc)
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if (
        name == "BudgetExceededError"
        or "insufficient_quota" in message
        or "exceeded your current quota" in message
    ):
        kind, retryable = "quota", False
    elif name == "ContentPolicyViolationError" or any(m in message.lower() for m in _FILTER_MARKS):
        kind, retryable = "content_filter", False
    elif name in ("AuthenticationError", "PermissionDeniedError") or "Missing credentials" in message:
        kind, retryable = "auth", False
    elif name == "RateLimitError" or status == 429:
        kind, retryable = "rate_limit", True
    elif name in ("Timeout", "APITimeoutError") or "timed out" in message.lower():
        kind, retryable = "timeout", True
    elif name == "APIConnectionError" and status in (None, 500):
        kind, retryable = "connection", True
    elif isinstance(status, int) and status >= 500:
        kind, retryable = "server", True
    elif isinstance(status, int) and status in _FAIL_FAST:
        kind, retryable = _FAIL_FAST[status], False
    else:
        kind, retryable = "other", False
    error = ModelCallError(kind, message, model=model, attempts=attempts)
    return error, retryable, _retry_after(exc) if retryable else None


def _builtin_error(exc: BaseException | None) -> ModelCallError | None:
    """The ModelCallError a built-in model raised, which litellm wraps in its own exception."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ModelCallError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _clean_message(exc: Exception) -> str:
    """The error text, first line only, with any API key from the environment masked."""
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    for name, value in os.environ.items():
        if value and len(value) >= 8 and ("KEY" in name or "TOKEN" in name or "SECRET" in name):
            message = message.replace(value, "***")
    return message[:500]
