"""The one model layer: the cache, bounded retries and error classification, over a transport
(litellm for every provider, a lean HTTP path for OpenAI-compatible endpoints, the built-ins in-process).

litellm is imported on its first call, never at plugin load (it costs seconds).
"""

from __future__ import annotations

import functools
import os
import random
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .aliases import resolve
from .builtin import BuiltinTransport
from .cache import ItemScope, ResponseCache, cache_key
from .classify import EmptyAnswer, Refused, classify
from .completion import Completion
from .errors import ModelCallError
from .ratelimit import SharedRateLimit
from .router import RouterGroup, RouterTransport
from .secrets import without_userinfo
from .transport import Answer, Endpoint, Transport, transport_for
from .waits import pause

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

    def transport(self, *, http_process: bool = False) -> Transport:
        """How its calls are made; ``http_process``: a lean endpoint's in a process of their own."""
        if self.group is not None:
            return RouterTransport(self.group, http_process=http_process)
        if self.builtin:
            return BuiltinTransport(Endpoint(self.litellm_model, self.api_base))
        return transport_for(Endpoint(self.litellm_model, self.api_base), in_own_process=http_process)


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


class WaitGate(Protocol):
    """What a thread holds while it runs and opens while it waits (the prefetch pool's gate)."""

    def opened(self) -> AbstractContextManager[None]: ...


_this_thread = threading.local()


def set_wait_gate(gate: WaitGate | None) -> None:
    """The gate this thread opens while ``complete`` waits on a model or on another process (the
    prefetch pool's, on its threads: run/scheduler.py); None: none."""
    _this_thread.gate = gate


@contextmanager
def _waiting() -> Iterator[None]:
    """Around a wait: this thread's gate opened, if it has one."""
    gate = getattr(_this_thread, "gate", None)
    if gate is None:
        yield
        return
    with gate.opened():
        yield


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
        sleep: Callable[[float], None] | None = None,
        run_id: str = "",
        revision: str | None = None,
        http_process: bool = False,
    ) -> None:
        self.spec = spec
        self.run_id = run_id
        self.revision = revision
        # set on jury members of one model id at different URLs (``Clients.judge_clients``): they are
        # different judges, so each keeps its own answers
        self.endpoint_in_key = False
        self.limit = limit
        self.params = params
        self.cache = None if spec.builtin else cache
        self.timeout_s = timeout_s
        self.retry = retry
        # set once the test loop has ended (see stop_asking): no call is made or retried after it
        self._loop_over = threading.Event()
        self._sleep = sleep or functools.partial(pause, until=self._loop_over)
        self.transport = spec.transport(http_process=http_process)
        self._fatal: ModelCallError | None = None
        self._said_capped = False

    def stop_asking(self) -> None:
        """The test loop has ended (its last test, -x, Ctrl-C): the prefetch's calls still in flight
        are answered, but no call is made or retried after, and a retry's backoff or a wait for the
        rate limit ends now; such a call fails, and no test takes its error. Without it, a stop
        waited out every retry of the calls in flight (a 429 asking for 20 s, 3 retries: 62 s)."""
        self._loop_over.set()

    def wait(self, seconds: float) -> None:
        """How this client waits (a retry's backoff; its rate limit's, see ``Clients.client``): no
        longer than until ``stop_asking``."""
        self._sleep(seconds)

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        epoch: int = 0,
        context: dict | None = None,
        paid_by: str = "",
        scope: ItemScope | None = None,
    ) -> Completion:
        """One answer to ``messages``; raises ModelCallError when none can be had.

        ``context`` describes the item for the built-in models only; it never reaches a real provider.
        ``paid_by`` is stored with a new answer (see ``Completion.paid_by``). ``scope`` keys the
        answer to one item's asking of it (the -n scratch file; see ``ItemScope``).
        """
        if self._fatal is not None:
            raise self._fatal
        if self.cache is None:  # the built-ins, and runs with no cache: no key to compute (0.05 ms)
            with _waiting():
                return self._fresh(messages, context, paid_by)
        # the resolved model id, not the alias (an alias may move); not the endpoint (a restarted local
        # server on a new port, or another replica, serves the same model)
        request = {"model": self.spec.litellm_model, "params": self.params.as_kwargs(), "messages": messages}
        if self.revision is not None:  # --model-revision: another revision of a model never shares answers
            request["revision"] = self.revision
        if self.endpoint_in_key:
            request["endpoint"] = without_userinfo(self.spec.api_base)
        key = cache_key({**request, "epoch": epoch})
        if scope is not None:
            key = scope.key(key)
        if (hit := self.cache.get(key)) is not None:
            return Completion.from_cache(hit)
        with _waiting():
            return self._asked(self.cache, key, messages, context, paid_by)

    def _asked(
        self,
        cache: ResponseCache,
        key: str,
        messages: list[dict[str, str]],
        context: dict | None,
        paid_by: str,
    ) -> Completion:
        """A request the cache does not hold: another process's answer once its claim ends, or ours."""
        claimed = cache.claims
        if claimed:  # another worker may be asking this very request: wait for its answer
            ttl_s = self.timeout_s * (self.retry.max_retries + 1) + MAX_RETRY_AFTER_S
            if (hit := cache.acquire(key, ttl_s)) is not None:
                return Completion.from_cache(hit)
        try:
            completion = self._fresh(messages, context, paid_by)
            cache.put(key, self.spec.name, completion.to_cache())
        finally:
            if claimed:
                cache.release(key)
        return completion

    def _fresh(self, messages: list[dict[str, str]], context: dict | None, paid_by: str) -> Completion:
        """A new answer from the model, stamped with who asked it and when."""
        completion = self._call_with_retries(messages, context)
        return replace(completion, paid_by=paid_by, run_id=self.run_id, created=time.time())

    def _call_with_retries(self, messages: list[dict[str, str]], context: dict | None) -> Completion:
        params = self.params.as_kwargs()
        started = time.perf_counter()
        attempt = 0
        # what the retried empty answers cost: tokens and cost are what the run spent, every attempt's
        spent_prompt, spent_completion, spent_cost = 0, 0, 0.0
        while True:
            if self._loop_over.is_set() and not attempt:  # a call a prefetch task starts after the stop
                message = "the test loop had ended; the call was not made"
                raise ModelCallError("other", message, model=self.spec.name)
            call_id = self.limit.acquire(self._loop_over.is_set) if self.limit else None
            if self.limit and call_id is None:
                message = "the test loop ended while the call waited for the rate limit; it was not made"
                raise ModelCallError("rate_limit", message, model=self.spec.name, attempts=max(attempt, 1))
            try:
                answer = self.transport.send(messages, params, self.timeout_s, context)
                completion = _usable(answer, time.perf_counter() - started)
                if self.limit:
                    self.limit.used(call_id, completion.prompt_tokens + completion.completion_tokens)
                return _plus(completion, spent_prompt, spent_completion, spent_cost)
            except Exception as exc:
                error, retryable, retry_after = classify(exc, self.spec.name, attempt + 1)
                if isinstance(exc, EmptyAnswer):
                    empty = exc.completion
                    if self.limit:  # its tokens count toward --medbench-tpm like any answer's
                        self.limit.used(call_id, empty.prompt_tokens + empty.completion_tokens)
                    if attempt >= self.retry.max_retries:  # still empty: that is the model's answer
                        return _plus(empty, spent_prompt, spent_completion, spent_cost)
                    spent_prompt += empty.prompt_tokens
                    spent_completion += empty.completion_tokens
                    spent_cost += empty.cost_usd
                if not retryable or attempt >= self.retry.max_retries or self._loop_over.is_set():
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
                if self._loop_over.is_set():
                    raise error from exc
                attempt += 1


def _plus(completion: Completion, prompt_tokens: int, completion_tokens: int, cost_usd: float) -> Completion:
    """``completion`` carrying also what the earlier (empty, retried) attempts of its call spent."""
    if not (prompt_tokens or completion_tokens or cost_usd):
        return completion
    return replace(
        completion,
        prompt_tokens=completion.prompt_tokens + prompt_tokens,
        completion_tokens=completion.completion_tokens + completion_tokens,
        cost_usd=completion.cost_usd + cost_usd,
    )


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
            raise Refused("the provider's content filter withheld the answer")
        if answer.no_content is not None:
            message = f"the model returned no content: {answer.no_content}"
            raise EmptyAnswer(completion, message, kind="no_content")
        raise EmptyAnswer(completion, "the model returned no content")
    return completion


def valid_unicode(text: str) -> str:
    """``text`` with lone surrogates (a JSON ``"\\ud83d"`` half an emoji) replaced by U+FFFD: they
    cannot be encoded as UTF-8, so the cache, the samples file and the report would all fail on them."""
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


class RetryAfterCapped(UserWarning):
    """A Retry-After longer than MAX_RETRY_AFTER_S: the wait is cut to it (said once)."""
