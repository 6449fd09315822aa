"""BLEU-1 and ROUGE-L of one generation item, under the released scripts' rules or the strict ones.

The released scripts treat the two sides differently per task family (``Metrics/Rationale.py``,
``FactVerification.py`` for task100, and the plain ``cal_similarity`` call of summaries,
explanations and task42); ``official`` follows each, ``strict`` treats every task alike. Where the
rouge package raises on a pair (an output of only periods, an empty reference) the released script
crashes; here the item scores 0 on both metrics and is flagged ``unscorable``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..data.meds_tasks import TaskSpec
from . import overlap

RATIONALE = "rationale"
EBMS_JUSTIFICATION = "task100"


@dataclass(frozen=True)
class OverlapScore:
    bleu_1: float | None  # None: the released rules skip the row (not counted in the task's mean)
    rouge_l: float | None
    unscorable: bool = False

    def as_scores(self) -> dict[str, float | None]:
        return {"bleu_1": self.bleu_1, "rouge_l": self.rouge_l}


SKIPPED = OverlapScore(None, None)
ZERO = OverlapScore(0.0, 0.0)
UNSCORABLE = OverlapScore(0.0, 0.0, unscorable=True)


def _both(output: str, gold: str, language: str, *, keep_blank_tokens: bool) -> OverlapScore:
    rouge = overlap.rouge_l(output, gold, language)
    if rouge is None:
        return UNSCORABLE
    return OverlapScore(overlap.bleu_1(output, gold, language, keep_blank_tokens=keep_blank_tokens), rouge)


def official_overlap(spec: TaskSpec, output: str, gold: str) -> OverlapScore:
    """The released scripts' per-item values, quirks included."""
    if spec.category == RATIONALE:  # both sides stripped; a blank row is skipped
        output, gold = output.strip(), gold.strip()
        if not output or not gold:
            return SKIPPED
        return _both(output, gold, spec.language, keep_blank_tokens=True)
    if spec.task_id == EBMS_JUSTIFICATION:  # the reference loses its periods, the output does not
        output, gold = output.strip().lower(), gold.replace(".", "").strip().lower()
        if not output:
            return ZERO  # "Empty output detected!": adds 0 and counts in n
        return _both(output, gold, spec.language, keep_blank_tokens=True)
    # summaries, explanations, task42: the raw strings, whitespace included
    return _both(output, gold, spec.language, keep_blank_tokens=True)


def strict_overlap(spec: TaskSpec, output: str, gold: str) -> OverlapScore:
    """Both sides normalised alike; an empty output scores 0 and counts; spaces are not words."""
    if spec.task_id == EBMS_JUSTIFICATION:
        output, gold = output.replace(".", "").lower(), gold.replace(".", "").lower()
    output, gold = output.strip(), gold.strip()
    if not output:
        return ZERO
    return _both(output, gold, spec.language, keep_blank_tokens=False)
