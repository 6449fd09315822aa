"""Scoring functions for tests of your own, with stable names and signatures (``docs/custom.md``).

They are the functions the benchmarks are scored with, not copies:

- ``rouge_l(answer, reference, language="en") -> float | None``: ROUGE-L F, 0-1 (None: unscorable);
- ``bleu_1(answer, reference, language="en") -> float``: smoothed BLEU-1, 0-1;
- ``entity_f1(answer, reference) -> float``: F1 of two comma-separated entity lists, 0-1;
- ``parse_label(answer, labels) -> str | None``: the label of a closed set the answer gives;
- ``parse_mcqa(answer) -> str | None``: the option letter(s) the answer picks, "B" or "A,C".
"""

from __future__ import annotations

from ..parsing.mcqa import mcqa_answer
from .labels import parse_label
from .overlap import bleu_1, rouge_l
from .sets import entity_f1

__all__ = ["bleu_1", "entity_f1", "parse_label", "parse_mcqa", "rouge_l"]


def parse_mcqa(answer: str) -> str | None:
    """The option letter(s) A-E an answer picks, sorted and comma-joined ("B", "A,C"); None when it
    picks none. "The right answer is B: sepsis" -> "B"; a lead-in such as "Answer:" is skipped."""
    return mcqa_answer(answer, several=True)
