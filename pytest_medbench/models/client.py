"""The one model layer: the cache, bounded retries and error classification, over a transport
(litellm for every provider, a lean HTTP path for OpenAI-compatible endpoints, the built-ins in-process).

litellm is imported on its first call, never at plugin load (it costs seconds).
"""

from __future__ import annotations

import email.utils
import os
import random
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from .aliases import resolve
from .builtin import BuiltinTransport
from .cache import Cache, cache_key
from .errors import ModelCallError
from .ratelimit import SharedRateLimit
from .secrets import mask
from .transport import Answer, Endpoint, Transport, transport_for

if TYPE_CHECKING:
    from .router import RouterGroup

BUILTIN_PREFIX = "medbench/"
REPLAY_PREFIX = "replay:"
MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True)
class GenerationParams:
    """Parameters that change an answer, so they are part of the cache key."""

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class ModelSpec:
    """What ``--model`` names, resolved to the litellm call it makes."""

    name: str  # as the user wrote it
    litellm_model: str  # the cache key's model: the id the name resolved to
    api_base: str | None = None
    builtin: bool = False
    group: RouterGroup | None = None  # from --model-router: the deployments to spread calls over

    @classmethod
    def parse(
        cls,
        name: str,
        api_base: str | None = None,
        aliases: dict[str, str] | None = None,
        groups: dict[str, RouterGroup] | None = None,
    ) -> ModelSpec:
        """``name`` as the user wrote it: a built-in, ``replay:PATH``, a ``--model-router`` group,
        an alias, or a litellm model id."""
        if groups and name in groups:
            return cls(name, groups[name].model_id, group=groups[name])
        if name.startswith(REPLAY_PREFIX):
            path = os.path.abspath(name[len(REPLAY_PREFIX) :])
            return cls(name, "medbench/replay", api_base=path, builtin=True)
        if name.startswith(BUILTIN_PREFIX):
            return cls(name, name, builtin=True)
        return cls(name, resolve(name, aliases), api_base=api_base)

    def transport(self) -> Transport:
        if self.group is not None:
            from .router import RouterTransport

            return RouterTransport(self.group)
        if self.builtin:
            return BuiltinTransport(Endpoint(self.litellm_model, self.api_base))
        return transport_for(Endpoint(self.litellm_model, self.api_base))


@dataclass(frozen=True)
class Completion:
    text: str
    reasoning: str | None = None  # provider "thinking" text, kept apart from the answer
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    # who asked, so that the item a call was made for counts its usage even when another xdist
    # worker made it (a prefetch) and this one reads it from the cache: the run and the item's key
    paid_by: str = ""
    cached: bool = False
    finish_reason: str | None = None  # "length": the answer was cut at the token limit
    # provenance, stored with the answer: the run that asked it, when, where, and what served it
    run_id: str = ""
    created: float | None = None
    api_base: str | None = None
    served_model: str | None = None
    system_fingerprint: str | None = None
    # why a 200 carried no answer (error body, no choices, content null): kept on the empty answer
    no_content: str | None = None

    def to_cache(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("cached")
        return record

    @classmethod
    def from_cache(cls, record: dict[str, Any]) -> Completion:
        return cls(**record, cached=True)

    def provenance(self) -> dict[str, Any]:
        """Where this answer came from, as the item's record keeps it."""
        return {
            "run": self.run_id,
            "created": self.created,
            "api_base": self.api_base,
            "served_model": self.served_model,
            "system_fingerprint": self.system_fingerprint,
        }


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

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class ModelClient:
    """Answers chat requests for one model: cache first, then litellm with bounded retries."""

    def __init__(
        self,
        spec: ModelSpec,
        params: GenerationParams,
        *,
        cache: Cache | None,
        timeout_s: float,
        retry: RetryPolicy,
        limit: SharedRateLimit | None = None,
        sleep: Callable[[float], None] = time.sleep,
        run_id: str = "",
        revision: str | None = None,
    ) -> None:
        self.spec = spec
        self.run_id = run_id
        self.revision = revision
        self.limit = limit
        self.params = params
        self.cache = None if spec.builtin else cache
        self.timeout_s = timeout_s
        self.retry = retry
        self._sleep = sleep
        self.transport = spec.transport()
        self._fatal: ModelCallError | None = None
        self._said_capped = False

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        epoch: int = 0,
        context: dict | None = None,
        paid_by: str = "",
    ) -> Completion:
        """One answer to ``messages``; raises ModelCallError when none can be had.

        ``context`` describes the item for the built-in models only; it never reaches a real provider.
        ``paid_by`` is stored with a new answer (see ``Completion.paid_by``).
        """
        if self._fatal is not None:
            raise self._fatal
        if self.cache is None:  # the built-ins, and runs with no cache: no key to compute (0.05 ms)
            return self._fresh(messages, context, paid_by)
        # the resolved model id, not the alias (an alias may move); not the endpoint (a restarted local
        # server on a new port, or another replica, serves the same model)
        request = {"model": self.spec.litellm_model, "params": self.params.as_kwargs(), "messages": messages}
        if self.revision is not None:  # --model-revision: another revision of a model never shares answers
            request["revision"] = self.revision
        key = cache_key({**request, "epoch": epoch})
        if (hit := self.cache.get(key)) is not None:
            return Completion.from_cache(hit)
        claimed = self.cache.claims
        if claimed:  # another worker may be asking this very request: wait for its answer
            ttl_s = self.timeout_s * (self.retry.max_retries + 1) + MAX_RETRY_AFTER_S
            if (hit := self.cache.acquire(key, ttl_s)) is not None:
                return Completion.from_cache(hit)
        try:
            completion = self._fresh(messages, context, paid_by)
            self.cache.put(key, self.spec.name, completion.to_cache())
        finally:
            if claimed:
                self.cache.release(key)
        return completion

    def _fresh(self, messages: list[dict[str, str]], context: dict | None, paid_by: str) -> Completion:
        """A new answer from the model, stamped with who asked it and when."""
        completion = self._call_with_retries(messages, context)
        return replace(completion, paid_by=paid_by, run_id=self.run_id, created=time.time())

    def _call_with_retries(self, messages: list[dict[str, str]], context: dict | None) -> Completion:
        params = self.params.as_kwargs()
        started = time.perf_counter()
        attempt = 0
        while True:
            call_id = self.limit.acquire() if self.limit else None
            try:
                answer = self.transport.send(messages, params, self.timeout_s, context)
                completion = _usable(answer, time.perf_counter() - started)
                if self.limit:
                    self.limit.used(call_id, completion.prompt_tokens + completion.completion_tokens)
                return completion
            except Exception as exc:
                error, retryable, retry_after = classify(exc, self.spec.name, attempt + 1)
                if isinstance(exc, _Empty) and attempt >= self.retry.max_retries:
                    if self.limit:  # its tokens count toward --medbench-tpm like any answer's
                        spent = exc.completion.prompt_tokens + exc.completion.completion_tokens
                        self.limit.used(call_id, spent)
                    return exc.completion  # still empty after its retries: that is the model's answer
                if not retryable or attempt >= self.retry.max_retries:
                    if error.fatal:
                        self._fatal = error
                    raise error from exc
                if retry_after is not None and retry_after > MAX_RETRY_AFTER_S and not self._said_capped:
                    self._said_capped = True  # once per client: every item would say the same
                    warnings.warn(
                        RetryAfterCapped(
                            f"{self.spec.name} asked to wait {retry_after:g} s (Retry-After); "
                            f"each retry waits at most {MAX_RETRY_AFTER_S:g} s"
                        ),
                        stacklevel=2,
                    )
                delay = self.retry.delay(attempt, retry_after)
                if self.limit and error.kind == "rate_limit":
                    self.limit.pause(delay)  # every worker backs off, not just this one
                self._sleep(delay)
                attempt += 1


def _usable(answer: Answer, latency_s: float) -> Completion:
    """The answer as a Completion; a withheld answer raises, an empty one (no text, or a 200 with no
    answer in it) raises to be retried and is the model's answer once the retries are spent."""
    completion = Completion(
        text=valid_unicode(answer.text),
        reasoning=None if answer.reasoning is None else valid_unicode(answer.reasoning),
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        cost_usd=answer.cost_usd,
        latency_s=round(latency_s, 4),
        finish_reason=answer.finish_reason,
        api_base=answer.api_base,
        served_model=answer.served_model,
        system_fingerprint=answer.system_fingerprint,
        no_content=answer.no_content,
    )
    if not answer.text.strip():
        if answer.finish_reason == "content_filter" or answer.refused:
            raise _Refused("the provider's content filter withheld the answer")
        if answer.no_content is not None:
            raise _Empty(completion, f"the model returned no content: {answer.no_content}", kind="no_content")
        raise _Empty(completion, "the model returned no content")
    return completion


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (a JSON ``"\\ud83d"`` half an emoji) replaced by U+FFFD: they
    cannot be encoded as UTF-8, so the cache, the samples file and the report would all fail on them."""
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


class RetryAfterCapped(UserWarning):
    """A Retry-After longer than MAX_RETRY_AFTER_S: the wait is cut to it (said once)."""


class _Empty(Exception):
    """An answer with no content: retried, since it is usually transient; after the last retry the
    empty ``completion`` is the answer, scored (and cached) like any other. ``kind`` is "empty" for an
    empty text, "no_content" for a 200 with no answer in it (an error body, no choices, content null):
    both take this one path."""

    def __init__(self, completion: Completion, message: str, kind: str = "empty") -> None:
        super().__init__(message)
        self.completion = completion
        self.kind = kind


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
# 403 is "forbidden", not "auth": a gateway blocking one prompt says nothing of the key, so later
# calls still go out (only auth and quota stop them: ModelCallError.fatal)
_FAIL_FAST = {401: "auth", 403: "forbidden", 404: "not_found", 400: "bad_request", 422: "bad_request"}


def classify(exc: Exception, model: str, attempts: int) -> tuple[ModelCallError, bool, float | None]:
    """(error for the report, whether to retry, Retry-After seconds) for an exception from a call."""
    if isinstance(exc, ModelCallError):  # a built-in model's own error (replay record missing)
        exc.model, exc.attempts = model, attempts
        return exc, False, None
    if isinstance(exc, _Empty):
        return ModelCallError(exc.kind, str(exc), model=model, attempts=attempts), True, None
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
    elif name == "AuthenticationError" or status == 401 or "Missing credentials" in message:
        kind, retryable = "auth", False
    elif name == "RateLimitError" or status == 429:
        kind, retryable = "rate_limit", True
    elif name in ("Timeout", "APITimeoutError") or "timed out" in message.lower():
        kind, retryable = "timeout", True
    elif (name == "APIConnectionError" and status in (None, 500)) or message.endswith("Connection error."):
        kind, retryable = "connection", True
    elif isinstance(status, int) and status >= 500:
        kind, retryable = "server", True
    elif isinstance(status, int) and status in _FAIL_FAST:
        kind, retryable = _FAIL_FAST[status], False
    else:
        kind, retryable = "other", False
    error = ModelCallError(kind, message, model=model, attempts=attempts)
    return error, retryable, _retry_after(exc) if retryable else None


def _clean_message(exc: Exception) -> str:
    """The error text, first line only, with every secret the run knows masked."""
    text = str(getattr(exc, "message", None) or exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    return mask(message)[:500]
