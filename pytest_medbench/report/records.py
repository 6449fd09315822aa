"""The per-item record: what one item produced, as it travels on ``report.user_properties``.

It is plain JSON data so it crosses xdist's wire unchanged and is written to the samples file as is;
the leaderboard is a pure function of these records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..models.secrets import mask

USER_PROPERTY = "medbench"
PARSED_SHOWN = ("answer", "labels", "entities", "requests")  # the part of ``parsed`` a failure shows
SHOWN_CHARS = 300


def _cut(text: str) -> str:
    """``text`` masked, then cut: cut first, a secret's first characters could be left to show."""
    text = mask(text)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}... [{len(text)} characters]"


@dataclass
class Usage:
    calls: int = 0  # answers this item was given by the model or the cache
    cache_hits: int = 0  # of those, answers an earlier run gave (read from the cache)
    reused: int = 0  # answers another item of this run was given (a shared MedR-Bench dialogue)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0  # wall time of live (non-cached) calls, retries included


@dataclass
class ItemRecord:
    benchmark: str
    task: str
    category: str
    id: str
    nodeid: str = ""
    tags: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    output: str | None = None
    epoch_outputs: list[str] = field(default_factory=list)  # filled when --medbench-epochs > 1
    parsed: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    aggregation: str = "mean"
    passed: bool = False
    reference: str | None = None  # what the answer was scored against
    pass_rule: str = ""  # the pass rule with this item's values: "ROUGE-L 0.12 < 0.30"
    unscorable: bool = False  # the released scorer could not score it: scored 0 and flagged
    error: dict[str, str] | None = None  # {"kind": ..., "message": ...}: the item has no score
    finish_reason: str | None = None  # of the model's last answer ("stop", "length", ...)
    truncated: bool = False  # some answer of the model's stopped at the token limit; scored as given
    # why a 200 carried no answer (error body, no choices, content null + finish reason, tool calls):
    # the answer was then the empty one, scored as such
    no_content: str | None = None
    usage: Usage = field(default_factory=Usage)  # the evaluated model's calls
    judge_usage: Usage = field(default_factory=Usage)  # the judge's and the patient agent's calls
    # where the model's answers came from (run id, date, api_base, served model id), one entry per origin
    provenance: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.benchmark, self.task, self.id)

    @property
    def counted(self) -> bool:
        """Whether the item's ``counts`` feed a corpus metric (NER, HoC), even when it counted nothing
        (a strict HoC item whose gold and answer name no label)."""
        return bool(self.counts) or self.aggregation != "mean"

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy (``asdict``'s deep one cost a cached rerun ~0.1 ms an item): the record is
        final once its test has run, so its lists and dicts can be shared."""
        data = dict(vars(self))
        data["usage"], data["judge_usage"] = dict(vars(self.usage)), dict(vars(self.judge_usage))
        return data

    def to_property(self, crosses_wire: bool) -> dict[str, Any] | str:
        """The record as it goes on ``report.user_properties``: from an xdist worker, as JSON text.
        execnet serialises a nested dict field by field: 43 us to send a MedS-Bench record and 47-53
        us to receive it, against 10-11 us each way for the same record as JSON text, on a 2-core
        run where the controller's reading competes with the workers. ASCII JSON, so no text of a
        record (a lone surrogate included) can fail execnet's UTF-8. In one process, the dict."""
        data = self.to_dict()
        return json.dumps(data) if crosses_wire else data

    @classmethod
    def from_property(cls, value: dict[str, Any] | str) -> ItemRecord:
        """A record from its ``user_properties`` value, in either form ``to_property`` gives."""
        return cls.from_dict(json.loads(value) if isinstance(value, str) else value)

    def failure_message(self) -> str:
        """Why a scored item failed, for the test's assertion: the pass rule with this item's values,
        the parsed answer, the reference and the scores (long texts cut)."""
        shown = next((self.parsed[key] for key in PARSED_SHOWN if key in self.parsed), self.output)
        scores = ", ".join(
            f"{name} {'-' if value is None else f'{value:.2f}'}" for name, value in self.scores.items()
        )
        return "\n".join(
            [
                f"answer judged wrong: {self.pass_rule}",
                f"  parsed:    {_cut(repr(shown))}",
                f"  reference: {_cut(repr(self.reference))}",
                f"  scores:    {scores}",
            ]
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemRecord:
        fields = dict(data)
        fields["usage"] = Usage(**fields.get("usage", {}))
        fields["judge_usage"] = Usage(**fields.get("judge_usage", {}))
        return cls(**fields)
