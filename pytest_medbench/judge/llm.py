"""The LLM judge for MedR-Bench: final answers, exam requests and the three reasoning metrics.

Every call goes through the run's judge client (cached like model calls, temperature 0 unless set),
and every verdict is parsed strictly (``parsing.verdict``): an unparseable reply is asked once more
with a reminder, and a second failure makes the item an error, never a silent Correct or Wrong.
Whatever the evaluated model wrote reaches the judge fenced (``prompts.fence``), never bare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..models.errors import ModelCallError
from ..models.secrets import mask
from ..parsing.medr import visible_text
from ..parsing.verdict import loads_lenient, parse_items, parse_verdict
from ..prompts.fence import fence
from ..prompts.medr import MedrPrompts
from ..prompts.verdict import VERDICT_LABELS, verdict_messages

Ask = Callable[[list[dict[str, str]]], str]
EFFICIENCY_LABELS = ("Citation", "Repetition", "Reasoning", "Redundancy")
MAX_EXTRA_SEARCHES = 4
JUDGE_TEMPERATURE = 0.0  # recorded as run.judge.temperature; the paper left the API default (1)
ITEMS_REMINDER = (
    'Reply with only a JSON array of objects, each with the keys "type", "test_name" and "info_required".'
)


def _quoted(reply: str) -> str:
    """The start of a judge reply for an error message: masked whole first, so that cutting it
    cannot leave most of a secret the judge echoed unmasked."""
    return repr(mask(reply)[:200])


class LLMJudge:
    approximate = False

    def __init__(self, ask: Ask, prompts: MedrPrompts, evidence: Callable[[str], str]) -> None:
        self._ask = ask
        self._prompts = prompts
        self._evidence = evidence

    # -- plumbing -----------------------------------------------------------------------------

    def _messages(self, template: str, **fields: str) -> list[dict[str, str]]:
        system = self._prompts.judge_system(template)
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": self._prompts.render(template, **fields)},
        ]

    def _verdict(self, messages: list[dict[str, str]], labels: tuple[str, ...]) -> tuple[str, str]:
        """(label, raw reply); one reminder on an unparseable reply, then a judge error."""
        reply = self._ask(messages)
        label = parse_verdict(reply, labels)
        if label is None:
            reminder = f"Reply with exactly one of: {', '.join(labels)}."
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": reminder},
            ]
            reply = self._ask(messages)
            label = parse_verdict(reply, labels)
        if label is None:
            raise ModelCallError(
                "judge_unparseable", f"no verdict among {labels} in the judge's reply {_quoted(reply)}"
            )
        return label, reply

    def _judge(self, template: str, labels: tuple[str, ...], **fields: str) -> str:
        return self._verdict(self._messages(template, **fields), labels)[0]

    # -- final answers ------------------------------------------------------------------------

    def diagnosis_correct(self, predicted: str, gold: str) -> bool:
        return (
            self._judge(
                "judge_diagnosis", ("Correct", "Wrong"), pred_diagnose=fence(predicted), gt_diagnose=gold
            )
            == "Correct"
        )

    def treatment_correct(self, predicted: str, gold: str, case: Any) -> bool:
        """Evidence comes from keywords of the gold plan (not the prediction), as the paper does."""
        info = (
            f"Case Summary: {case.summary}\nTreatment Planning Analysis: {case.reference_reasoning}\n"
            f"Treatment Plan Results: {case.reference}"
        )
        keywords = visible_text(self._ask(self._messages("judge_treatment_keywords", info=info)))
        evidence = self._evidence(keywords)
        verdict = self._judge(
            "judge_treatment",
            ("Correct", "Wrong"),
            pred_treatment=fence(predicted),
            gt_treatment=gold,
            additional_info=evidence,
        )
        return verdict == "Correct"

    def verdict(
        self, answer: str, reference: str, question: str | None = None, rubric: str | None = None
    ) -> bool:
        """Whether a free-text answer agrees with the reference (own items; our prompt wording)."""
        messages = verdict_messages(answer, reference, question, rubric)
        return self._verdict(messages, VERDICT_LABELS)[0] == "Correct"

    # -- examination requests -----------------------------------------------------------------

    def _items(self, text: str) -> list[dict[str, str]]:
        """The judge's structuring of ``text``; a reply that is not a JSON list of objects (not JSON,
        or a list with strings in it) is asked once more with a reminder, then a judge error."""
        messages = self._messages("judge_exam_items", info_required=text)
        reply = self._ask(messages)
        items = parse_items(reply)
        if items is None:
            reminder = {"role": "user", "content": ITEMS_REMINDER}
            reply = self._ask([*messages, {"role": "assistant", "content": reply}, reminder])
            items = parse_items(reply)
        if items is None:
            raise ModelCallError(
                "judge_unparseable",
                f"the judge's exam items are not a JSON list of objects: {_quoted(reply)}",
            )
        return items

    def _matched(self, item: dict[str, str], text: str, *, from_model: bool) -> bool:
        """Whether ``item`` is in ``text``. An item structured from the model's requests carries the
        model's words (the judge copies test names verbatim), so it is fenced as the answer is."""
        rendered = self._prompts.render(
            "judge_exam_item",
            type=item.get("type", ""),
            test_name=item.get("test_name", ""),
            info_required=item.get("info_required", ""),
        )
        step = fence(rendered) if from_model else rendered
        return self._judge("judge_exam_match", ("Yes", "No"), a_info_step=step, gt_info=text) == "Yes"

    def exam_scores(self, requests: str, ancillary: str) -> dict[str, Any]:
        """Precision: requested items found in the hidden tests; recall: hidden tests found in requests."""
        predicted = self._items(fence(requests)) if requests.strip() else []
        reference = self._items(ancillary)
        if not predicted or (len(predicted) == 1 and not predicted[0].get("type")):
            return {"precision": 0.0, "recall": 0.0, "requested": predicted, "reference": reference}
        hits = [self._matched(item, ancillary, from_model=True) for item in predicted]
        found = [self._matched(item, fence(requests), from_model=False) for item in reference]
        return {
            "precision": sum(hits) / len(hits),
            "recall": sum(found) / len(found) if found else None,
            "requested": predicted,
            "reference": reference,
        }

    # -- reasoning ----------------------------------------------------------------------------

    def reasoning(self, steps: list[str], case: str, goal: str, reference_reasoning: str) -> dict[str, Any]:
        """Efficiency, factuality and completeness of the predicted steps (None where undefined)."""
        labels = []
        for index, step in enumerate(steps):
            previous = "\n".join(steps[:index])
            labels.append(
                self._judge(
                    "judge_efficiency",
                    EFFICIENCY_LABELS,
                    current_step=fence(step),
                    previous_steps=fence(previous),
                    case=case,
                    result=goal,
                )
            )
        useful = [step for step, label in zip(steps, labels, strict=True) if label == "Reasoning"]
        facts = [self._step_is_correct(step, case) for step in useful]
        hits = self._reference_hits(reference_reasoning, steps)
        completeness: float | None
        if hits:
            completeness = sum(hits.values()) / len(hits)
        elif reference_reasoning.strip() and not steps:  # no predicted steps cover nothing of it
            completeness = 0.0
        else:  # no reference reasoning, or the judge split it into no steps (M = 0): undefined,
            completeness = None  # like efficiency with N = 0 and factuality with no useful step
        return {
            "efficiency": sum(label == "Reasoning" for label in labels) / len(labels) if labels else None,
            "factuality": sum(f["correct"] for f in facts) / len(facts) if facts else None,
            "completeness": completeness,
            "steps": [{"step": s, "efficiency": label} for s, label in zip(steps, labels, strict=True)],
            "factuality_checks": facts,
            "reference_steps": hits,
        }

    def _step_is_correct(self, step: str, case: str) -> dict[str, Any]:
        """The factuality dialogue: while the judge answers Search, it gets the evidence it asked for,
        at most MAX_EXTRA_SEARCHES times; a step still at Search after that counts as not correct."""
        keywords = visible_text(self._ask(self._messages("judge_keywords", reasoning_step=fence(step))))
        messages = self._messages(
            "judge_factuality", case=case, info=self._evidence(keywords), reasoning_step=fence(step)
        )
        path = []
        for searches in range(MAX_EXTRA_SEARCHES + 1):
            label, reply = self._verdict(messages, ("Correct", "Wrong", "Search"))
            data = loads_lenient(reply) if "{" in reply else None
            more = data.get("keywords_to_search") if isinstance(data, dict) else None
            path.append({"judgment": label, "keywords_to_search": more})
            if label != "Search" or searches == MAX_EXTRA_SEARCHES:
                break
            evidence = self._evidence(str(more or keywords))
            follow_up = self._prompts.render("judge_factuality_search", info=evidence)
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": follow_up},
            ]
        return {"step": step, "correct": path[-1]["judgment"] == "Correct", "judgment_path": path}

    def _reference_hits(self, reference_reasoning: str, steps: list[str]) -> dict[str, bool]:
        if not reference_reasoning.strip() or not steps:
            return {}
        reply = self._ask(self._messages("judge_split_reference", gt_reasoning=reference_reasoning))
        lines = visible_text(reply).replace("\n\n", "\n").split("\n")
        reference = [line.strip() for line in lines if line.strip()][:10]
        predicted = "\n".join(steps)
        return {
            line: self._judge(
                "judge_step_hit", ("Yes", "No"), a_reasoning_step=line, out_reasoning=fence(predicted)
            )
            == "Yes"
            for line in reference
        }
