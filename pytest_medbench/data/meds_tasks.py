"""The MedS-Bench task table: task id -> category, scorer and language.

The task id (``task57`` from ``task57_medqa_usmle.json``) decides how a task is scored, not the
folder it was found in, so a file dropped into the wrong folder still scores right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = (
    "mcqa",
    "summarization",
    "information_extraction",
    "explanation",
    "rationale",
    "ner",
    "diagnosis",
    "treatment_planning",
    "outcome_prediction",
    "text_classification",
    "fact_verification",
    "nli",
)

# The papers average summarization over these four tasks only; CT and MRI are reported apart.
SUMMARIZATION_PRIMARY = frozenset({"task114", "task110", "task112", "task78"})
# Derived from MIMIC (PhysioNet credentialed access): never shipped, only read from a user's own copy.
PHYSIONET_GATED = frozenset({"task41", "task42", "task78", "task112", "task117", "task118", "task119"}) | {
    f"task{n}" for n in range(83, 95)
}

# Scorer kinds; each names one function family in ``pytest_medbench.metrics``.
MCQA = "mcqa"
LABEL_PREFIX = "label_prefix"  # diagnosis / treatment: gold "<prefix> <label>."
EXTRACTION = "extraction"
PATIENT_PROFILE = "patient_profile"  # task74: gender and age list
OUTCOME = "outcome"
FIRST_LINE = "first_line"  # fact verification accuracy
NLI_LABEL = "nli_label"
NER = "ner"
MULTILABEL = "multilabel"
GENERATION = "generation"
LABEL = "label"  # declared tasks: one label of the task's label set
JUDGE = "judge"  # declared tasks: the run's judge compares the answer with the reference


@dataclass(frozen=True)
class TaskSpec:
    """How one MedS-Bench task is prompted and scored."""

    task_id: str
    category: str
    scorer: str
    language: str = "en"  # tokenizer language for BLEU / ROUGE: en, zh, ja, fr, ru, es
    label_prefix: str = ""
    # declared tasks only (``data.declared``): where they report, and how they pass
    benchmark: str = "meds"
    labels: tuple[str, ...] = ()  # label / multilabel: the label set (default: the gold outputs)
    pass_threshold: float | None = None  # generation (ROUGE-L) / ner (F1), on a 0-1 scale
    rubric: str = ""  # judge: what the judge is told to look for


def _specs() -> dict[str, TaskSpec]:
    table: list[TaskSpec] = []
    mcqa_lang = {57: "en", 122: "en", 123: "en", 58: "zh", 59: "ja", 60: "fr", 61: "ru", 129: "es"}
    table += [TaskSpec(f"task{n}", "mcqa", MCQA, lang) for n, lang in mcqa_lang.items()]
    summ = [114, 110, 112, 78, *range(83, 95)]
    table += [TaskSpec(f"task{n}", "summarization", GENERATION) for n in summ]
    table += [TaskSpec(f"task{n}", "information_extraction", EXTRACTION) for n in (1, 2, 3, 29)]
    table.append(TaskSpec("task74", "information_extraction", PATIENT_PROFILE))
    table += [TaskSpec(f"task{n}", "explanation", GENERATION) for n in (18, 46, 50)]
    rationale_lang = {51: "zh", 52: "en", 53: "fr", 54: "ja", 55: "ru", 56: "es"}
    table += [TaskSpec(f"task{n}", "rationale", GENERATION, lang) for n, lang in rationale_lang.items()]
    table += [TaskSpec(f"task{n}", "ner", NER) for n in (125, 126, 127, 128)]
    table.append(TaskSpec("task130", "diagnosis", LABEL_PREFIX, label_prefix="The diagnosis result is"))
    table.append(
        TaskSpec("task131", "treatment_planning", LABEL_PREFIX, label_prefix="The treatment planning is:")
    )
    table += [TaskSpec(f"task{n}", "outcome_prediction", OUTCOME) for n in (117, 118, 119)]
    table.append(TaskSpec("task106", "text_classification", MULTILABEL))
    table += [TaskSpec(f"task{n}", "fact_verification", FIRST_LINE) for n in (12, 16)]
    table.append(TaskSpec("task100", "fact_verification", GENERATION))
    table.append(TaskSpec("task41", "nli", NLI_LABEL))
    table.append(TaskSpec("task42", "nli", GENERATION))
    return {spec.task_id: spec for spec in table}


TASKS: dict[str, TaskSpec] = _specs()


def averaged_tasks(benchmark: str, category: str, tasks: list[str]) -> set[str]:
    """The tasks a category's average covers: all of them, except that MedS-Bench summarization
    averages its four primary tasks (when any is present)."""
    if (benchmark, category) == ("meds", "summarization"):
        return {task for task in tasks if task in SUMMARIZATION_PRIMARY} or set(tasks)
    return set(tasks)


def absent_tasks(present: set[str]) -> dict[str, str]:
    """Benchmark tasks missing from a data directory, each with the reason a user should read."""
    return {
        task_id: "PhysioNet-gated MIMIC task: add your own credentialed copy to the data directory"
        if task_id in PHYSIONET_GATED
        else "not in the data directory"
        for task_id in sorted(TASKS, key=lambda t: int(t[4:]))
        if task_id not in present
    }


_TASK_ID = re.compile(r"^(task\d+)")


def task_id_in(name: str) -> str | None:
    """The ``taskNNN`` a file name starts with, known to the benchmark or not: ``task57`` from
    ``task57_medqa_usmle.json``, ``task57-medqa.jsonl`` and ``task57.json`` alike. The one rule
    for a file's task id (the loader, the absent-task list and declarations by prefix use it)."""
    match = _TASK_ID.match(name)
    return match.group(1) if match else None


def task_spec(task_id: str) -> TaskSpec | None:
    """The spec of a known task id, or None for an id the benchmark does not define."""
    return TASKS.get(task_id)
