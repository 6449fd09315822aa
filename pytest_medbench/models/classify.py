"""What went wrong in a model call: the ModelCallError it is reported as, whether to retry it, and
for how long the provider asked us to wait."""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

from .completion import Completion
from .errors import ModelCallError
from .secrets import mask


class EmptyAnswer(Exception):
    """An answer with no content: retried, since it is usually transient; after the last retry the
    empty ``completion`` is the answer, scored (and cached) like any other. ``kind`` is "empty" for an
    empty text, "no_content" for a 200 with no answer in it (an error body, no choices, content null):
    both take this one path."""

    def __init__(self, completion: Completion, message: str, kind: str = "empty") -> None:
        super().__init__(message)
        self.completion = completion
        self.kind = kind


class Refused(Exception):
    """A content-filter refusal: not retried, since the same prompt gets the same refusal."""


def _retry_after(exc: Exception) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date) on the error, if any; a value
    that is neither is ignored (Python 3.10+ raises on it: the item was a harness error)."""
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
            seconds = float(value)
        except (TypeError, ValueError):
            try:  # an HTTP date; anything else ("soon", "10s") is no Retry-After: the normal backoff
                seconds = email.utils.parsedate_to_datetime(str(value)).timestamp() - time.time()
            except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
                continue
        if math.isnan(seconds):
            continue
        return max(0.0, seconds)
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
    if isinstance(exc, EmptyAnswer):
        return ModelCallError(exc.kind, str(exc), model=model, attempts=attempts), True, None
    if isinstance(exc, Refused):
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
    elif name in ("Timeout", "APITimeoutError") or status in (408, 504) or "timed out" in message.lower():
        # 408 and 504 as litellm maps them: a timeout, retried
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
