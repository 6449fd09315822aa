"""Score one MedS-Bench output against its reference, by the task's scorer kind and the scoring mode.

Per-item pass rules (the corpus metrics are computed from all items in ``report.aggregate``):

| scorer                                   | item passes when                                   |
|------------------------------------------|----------------------------------------------------|
| accuracy tasks (MCQA, Dx, Tx, IE, COP, fact verification, NLI) | the answer is correct       |
| generation (summaries, explanations, rationales, task42, task100) | ROUGE-L F >= 0.30        |
| NER                                      | the item's entity F1 >= 0.50                       |
| HoC multi-label                          | the predicted label set equals the gold set       |
"""

from __future__ import annotations

from typing import Any

from ..data import meds_tasks as kinds
from ..data.meds_tasks import TaskSpec
from ..models.secrets import mask
from ..parsing.mcqa import extract_yes_no_maybe, mcqa_answer, several_answers
from . import accuracy, generation, sets
from .labels import parse_label
from .score import ItemScore

GENERATION_PASS_ROUGE_L = 0.30
NER_PASS_F1 = 0.50


_ACCURACY_RULES = {
    kinds.EXTRACTION: (accuracy.official_extraction, accuracy.strict_extraction),
    kinds.PATIENT_PROFILE: (accuracy.official_extraction, accuracy.strict_patient_profile),
    kinds.OUTCOME: (accuracy.official_outcome, accuracy.strict_outcome),
    kinds.FIRST_LINE: (accuracy.official_first_line, accuracy.strict_first_line),
    kinds.NLI_LABEL: (accuracy.official_nli, accuracy.strict_nli),
}


def _correct(spec: TaskSpec, output: str, gold: str, strict: bool, label_set: tuple[str, ...]) -> bool:
    if spec.scorer == kinds.MCQA:
        pubmedqa = spec.task_id == "task123"
        if strict:
            return accuracy.strict_mcqa(output, gold, pubmedqa=pubmedqa, several=several_answers(spec))
        return accuracy.official_mcqa(output, gold, pubmedqa=pubmedqa)
    if spec.scorer == kinds.LABEL:  # declared tasks: the same label parsed out of both sides
        answer = parse_label(output, label_set)
        return answer is not None and answer == parse_label(gold, label_set)
    if spec.scorer == kinds.LABEL_PREFIX:
        rule = accuracy.strict_label_prefix if strict else accuracy.official_label_prefix
        return rule(output, gold, spec.label_prefix)
    official, strict_rule = _ACCURACY_RULES[spec.scorer]
    return (strict_rule if strict else official)(output, gold)


def score_meds(
    spec: TaskSpec, output: str, gold: str, *, mode: str = "official", label_set: tuple[str, ...] = ()
) -> ItemScore:
    """The item's scores under ``mode``; never raises, whatever ``output`` holds.

    MedS-Bench HoC reads the ten hallmark labels in both modes; its macro P/R/F1 runs over all ten in
    official mode, and in strict mode over the labels the scored items' golds or answers use (a
    hallmark answered and never gold counts, with precision 0). A declared task (``spec.benchmark``
    not meds) uses its own ``label_set`` in both modes (``mcqa``: sets of letters), and its
    ``pass_threshold`` in place of the generation and NER pass marks.
    """
    strict = mode == "strict"
    if spec.scorer == kinds.GENERATION:
        rule = generation.strict_overlap if strict else generation.official_overlap
        result = rule(spec, output, gold)
        mark = _pass_mark(spec, GENERATION_PASS_ROUGE_L)
        passed = (result.rouge_l or 0.0) >= mark
        rule = threshold_rule("ROUGE-L", result.rouge_l or 0.0, mark)
        return ItemScore(result.as_scores(), passed, unscorable=result.unscorable, rule=rule)
    if spec.scorer == kinds.NER:
        # official: a blank output is the entity set {''} (one false positive), as the released code has it
        extract = sets.strict_entities if strict else sets.official_entities
        predicted, expected = extract(output), extract(gold)
        counts = sets.entity_counts(predicted, expected)
        item_f1 = sets.item_f1(predicted, expected)
        parsed = {"entities": sorted(predicted)}
        mark = _pass_mark(spec, NER_PASS_F1)
        rule = threshold_rule("entity F1", item_f1, mark)
        return ItemScore({"f1": item_f1}, item_f1 >= mark, parsed, counts, "micro_f1", rule=rule)
    if spec.scorer == kinds.MULTILABEL:
        extract = sets.strict_labels if strict else sets.official_labels
        # MedS-Bench HoC: the ten hallmarks in both modes; a declared task: its own label set
        labels = sets.HOC_LABELS if spec.benchmark == "meds" else label_set
        predicted, expected = extract(output, labels), extract(gold, labels)
        # strict HoC counts only the labels this item's gold or answer uses, so the corpus macro
        # average runs over the labels the scored items use (the macro reducer's labels are the keys)
        counted = tuple(sorted(predicted | expected)) if strict and spec.benchmark == "meds" else labels
        counts = sets.label_counts(predicted, expected, counted)
        parsed = {"labels": sorted(predicted)}
        rule = (
            "label set equals the reference's"
            if predicted == expected
            else "label set differs from the reference's (must be equal)"
        )
        return ItemScore(
            {"exact_match": float(predicted == expected)},
            predicted == expected,
            parsed,
            counts,
            "macro_f1",
            rule=rule,
        )
    unscorable = (
        not strict
        and spec.scorer == kinds.MCQA
        and accuracy.official_mcqa_raises(output, gold, pubmedqa=spec.task_id == "task123")
    )
    correct = not unscorable and _correct(spec, output, gold, strict, label_set)
    rule = (
        "unscorable by the released code (scored 0)"
        if unscorable
        else f"answer {'correct' if correct else 'wrong'} under {mode} scoring (must be correct)"
    )
    parsed = _parsed_answer(spec, output, label_set)
    return ItemScore({"accuracy": float(correct)}, correct, parsed, unscorable=unscorable, rule=rule)


def threshold_rule(metric: str, value: float, threshold: float) -> str:
    """ "ROUGE-L 0.12 < 0.30": a score against the pass threshold, as a failure message shows it."""
    return f"{metric} {value:.2f} {'>=' if value >= threshold else '<'} {threshold:.2f}"


def _pass_mark(spec: TaskSpec, default: float) -> float:
    return default if spec.pass_threshold is None else spec.pass_threshold


def judged_score(judge: Any, output: str, reference: str, question: str, rubric: str = "") -> ItemScore:
    """A declared ``judge`` task's item: the run's judge (or jury, or the offline judge) decides."""
    correct = judge.verdict(output, reference, question=question, rubric=rubric or None)
    rule = f"the judge found the answer {'correct' if correct else 'wrong'} (must be correct)"
    parsed = {"answer": _start(output) or None}
    return ItemScore({"accuracy": float(correct)}, correct, parsed, rule=rule)


def _start(text: str) -> str:
    """The first 200 characters of ``text``, as the record shows an answer: masked before the cut,
    which could otherwise leave most of a secret the answer holds unmasked."""
    return mask(text.strip())[:200]


def _parsed_answer(spec: TaskSpec, output: str, label_set: tuple[str, ...]) -> dict:
    if spec.scorer == kinds.LABEL:
        return {"answer": parse_label(output, label_set)}
    if spec.scorer == kinds.MCQA:
        if spec.task_id == "task123":
            return {"answer": extract_yes_no_maybe(output)}
        return {"answer": mcqa_answer(output, several=several_answers(spec))}
    return {"answer": _start(output.strip().split("\n", 1)[0]) or None}
