"""The one exception type the model layer raises: a model call that gave no usable answer."""

from __future__ import annotations


class ModelCallError(Exception):
    """A call that failed after any retries; ``kind`` says why, in one word, for the report.

    Kinds: auth, quota, forbidden (403: this request only), rate_limit, timeout, server, connection,
    bad_request, not_found, content_filter, replay_missing, other. (An empty answer, or a 200 with
    no answer in it, is retried and then is the model's empty answer, not an error.)
    """

    def __init__(self, kind: str, message: str, *, model: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.kind = kind
        self.model = model
        self.attempts = attempts

    @property
    def fatal(self) -> bool:
        """True when no later call to this model can succeed either (bad key, no quota)."""
        return self.kind in ("auth", "quota")

    def __str__(self) -> str:
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.kind} error from model {self.model!r}{tries}: {self.args[0]}"
