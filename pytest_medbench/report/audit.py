"""The data audit: facts about a task's instances that decide whether its score means anything.

A task whose golds are all one label is won by a constant answer; one whose inputs repeat with
different golds caps every model. For each task: how many instances, how many distinct inputs, for
label tasks the share of the commonest gold label (what always giving that answer scores), the
built-in baseline's pass rate, and flags. Shown in ``medbench audit`` and beside every score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from ..data.meds_tasks import (
    FIRST_LINE,
    GENERATION,
    JUDGE,
    LABEL_PREFIX,
    MCQA,
    MULTILABEL,
    NLI_LABEL,
    OUTCOME,
    TaskSpec,
)
from ..items.base import Transcript
from ..models.baseline import baseline_answer
from ..parsing.mcqa import extract_yes_no_maybe, mcqa_answer, several_answers

UNBALANCED_SHARE = 50.0  # percent: a constant answer already scores half


def gold_label(spec: TaskSpec, reference: str) -> str | None:
    """The label a gold output answers with, for tasks scored on a label; None for the others."""
    if spec.scorer == MCQA:
        if spec.task_id == "task123":
            return extract_yes_no_maybe(reference) or reference.strip().lower()
        return mcqa_answer(reference, several=several_answers(spec)) or reference.strip()
    if spec.scorer == LABEL_PREFIX:
        text = reference.strip()
        if text.lower().startswith(spec.label_prefix.lower()):
            text = text[len(spec.label_prefix) :]
        return text.strip().rstrip(".").strip().lower()
    if spec.scorer in (OUTCOME, FIRST_LINE, NLI_LABEL):
        return (reference.strip().splitlines() or [""])[0].strip().rstrip(".").lower()
    if spec.scorer == MULTILABEL:
        parts = (part.strip().rstrip(".").strip().lower() for part in reference.split(","))
        return ", ".join(sorted(part for part in parts if part))
    return None


def _percent(count: int, total: int) -> float:
    return round(100.0 * count / total, 2) if total else 0.0


def audit_meds_items(items: Sequence[Any], *, generation_baseline: bool = True) -> dict[str, Any]:
    """The audit of one MedS-Bench task from its items (all of one task).

    ``generation_baseline=False`` skips the baseline on generation tasks: its ROUGE-L and BLEU-1
    cost about 6 ms an item, too much to add to every run (``medbench audit`` computes it).
    """
    spec = items[0].task_data.spec
    inputs = Counter(item.instance.input for item in items)
    labels = Counter(
        label for item in items if (label := gold_label(spec, item.instance.reference)) is not None
    )
    audit: dict[str, Any] = {"instances": len(items), "distinct_inputs": len(inputs)}
    flags = []
    if len(inputs) < len(items):
        flags.append("duplicate_inputs")
    if labels:
        label, count = labels.most_common(1)[0]
        audit |= {
            "labels": len(labels),
            "majority_label": label,
            "majority_share": _percent(count, len(items)),
        }
        if len(labels) == 1:
            flags.append("degenerate")
        if audit["majority_share"] >= UNBALANCED_SHARE:
            flags.append("unbalanced_golds")
    # a judge-scored declared task needs the run's judge: the audit asks no model
    if spec.scorer != JUDGE and (spec.scorer != GENERATION or generation_baseline):
        passed = sum(
            item.score(Transcript([], baseline_answer(item.builtin_context())), None).passed for item in items
        )
        audit["baseline_pass_rate"] = _percent(passed, len(items))
    audit["flags"] = flags
    return audit


def audit_medr_items(items: Sequence[Any]) -> dict[str, Any]:
    """A MedR-Bench setting's audit: cases and distinct case summaries (no labels; the baseline
    needs a judge, so it is not scored here)."""
    distinct = len({item.case.summary for item in items})
    return {
        "instances": len(items),
        "distinct_inputs": distinct,
        "flags": ["duplicate_inputs"] if distinct < len(items) else [],
    }


def audit_by_task(
    items: Iterable[Any], wanted: set[tuple[str, str]], **options: Any
) -> dict[tuple[str, str], dict]:
    """Audits of the (benchmark, task) pairs in ``wanted``, from a run's items; load-error
    stand-ins (no instance, no case) have none."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for item in items:
        key = (item.benchmark, item.task)
        if key in wanted and (hasattr(item, "instance") or hasattr(item, "case")):
            grouped.setdefault(key, []).append(item)
    return {
        # by the items' format: declared own tasks (benchmark "custom" or their own) are MedS-format
        key: audit_meds_items(group, **options) if hasattr(group[0], "instance") else audit_medr_items(group)
        for key, group in grouped.items()
    }


def audit_note(audit: dict[str, Any] | None) -> str:
    """What the summary shows beside a task's score: the majority share, and a degenerate mark."""
    if not audit or "majority_share" not in audit:
        return ""
    note = f"majority {audit['majority_share']:.1f}"
    if "degenerate" in audit["flags"]:
        note += "; DEGENERATE: every gold is one label"
    return note


def audit_table(audits: dict[tuple[str, str], dict]) -> list[str]:
    """``medbench audit``'s table: one row per task."""
    rows = [("task", "n", "distinct", "majority", "baseline", "flags")]
    for (_, task), audit in sorted(audits.items(), key=lambda pair: int(pair[0][1][4:])):
        share, baseline = audit.get("majority_share"), audit.get("baseline_pass_rate")
        rows.append(
            (
                task,
                str(audit["instances"]),
                str(audit["distinct_inputs"]),
                "-" if share is None else f"{share:.1f}",
                "-" if baseline is None else f"{baseline:.1f}",
                ", ".join(audit["flags"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        f"{row[0]:<{widths[0]}}  "
        + "  ".join(f"{cell:>{widths[i + 1]}}" for i, cell in enumerate(row[1:5]))
        + f"  {row[5]}".rstrip()
        for row in rows
    ]
