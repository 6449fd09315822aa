"""What scoring one item yields, whatever the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ItemScore:
    scores: dict[str, float | None]  # item-level values, 0-1 scale; None = could not be scored
    passed: bool
    parsed: dict = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)  # components of corpus metrics (tp/fp/fn)
    aggregation: str = "mean"  # how report.aggregate turns items into the task metric
    # the released scorer cannot score this pair (it would crash): scored 0 and flagged, as the spec says
    unscorable: bool = False
    rule: str = ""  # the pass rule with this item's values, for a failure message: "ROUGE-L 0.12 < 0.30"
