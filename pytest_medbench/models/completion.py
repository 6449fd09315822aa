"""One answer from a model, as the client returns it, the cache stores it and the records meter it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
