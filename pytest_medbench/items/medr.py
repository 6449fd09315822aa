"""MedR-Bench items: one case in one setting = one pytest item.

This module covers the single-turn settings (oracle diagnosis, treatment planning), judged by the
offline judge; the dialogue settings and the LLM judge build on the same item shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..data.medr import Case, slug
from ..judge.offline import offline_verdict
from ..metrics.score import ItemScore
from ..parsing.medr import MAX_STEPS, parse_answer_output
from ..prompts.medr import single_turn_messages

SETTING_CATEGORY = {"oracle_diagnosis": "diagnosis", "treatment": "treatment_planning"}
SETTINGS_BY_KIND = {"diagnosis": ("oracle_diagnosis",), "treatment": ("treatment",)}
ANSWER_LAYOUT = "### Reasoning:\n{steps}\n\n### Answer:\n{answer}"


def render_answer(steps: list[str], answer: str) -> str:
    """An output in the layout our prompts ask for (used by the oracle and the baseline)."""
    tagged = "\n".join(f"<step {number}> {step}" for number, step in enumerate(steps, start=1))
    return ANSWER_LAYOUT.format(steps=tagged, answer=answer)


@dataclass(frozen=True, repr=False)
class MedrItem:
    case: Case
    task: str  # the setting
    benchmark: str = "medr"

    @property
    def category(self) -> str:
        return SETTING_CATEGORY[self.task]

    @property
    def item_id(self) -> str:
        return self.case.case_id

    def __repr__(self) -> str:
        return f"<{self.benchmark} item {self.param_id}>"

    @property
    def param_id(self) -> str:
        return f"{self.task}-{self.case.case_id}"

    @property
    def markers(self) -> tuple[str, ...]:
        return ("medr", self.category, self.task) + (("rare",) if self.case.rare else ())

    @property
    def tags(self) -> dict:
        return {"rare": self.case.rare, "body_systems": [slug(label) for label in self.case.body_systems]}

    def messages(self) -> list[dict[str, str]]:
        return single_turn_messages(self.task, self.case.summary)

    def builtin_context(self) -> dict:
        reasoning = [line.strip() for line in self.case.reference_reasoning.split("\n") if line.strip()]
        return {
            "benchmark": "medr",
            "task": self.task,
            "case": self.case.case_id,
            "input": self.case.summary,
            "reference": render_answer(reasoning[:MAX_STEPS] or [self.case.reference], self.case.reference),
            "answer_format": render_answer(["The leading problem is {answer}."], "{answer}"),
        }

    def score(self, output: str) -> ItemScore:
        parsed = parse_answer_output(output)
        correct, similarity = offline_verdict(parsed.answer, self.case.reference)
        details = parsed.as_dict() | {"judge": {"kind": "offline", "similarity": round(similarity, 1)}}
        if parsed.answer is None:
            details["notes"].append("no answer could be parsed: scored as incorrect")
        return ItemScore({"accuracy": float(correct)}, correct, details)


def medr_items(cases: list[Case]) -> Iterator[MedrItem]:
    for case in cases:
        for setting in SETTINGS_BY_KIND[case.kind]:
            yield MedrItem(case, setting)
