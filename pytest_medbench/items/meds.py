"""MedS-Bench items: one task instance = one pytest item."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..data.meds import Instance, Task
from ..data.meds_tasks import GENERATION, JUDGE, LABEL, MULTILABEL
from ..metrics.meds import judged_score, score_meds
from ..metrics.score import ItemScore
from ..prompts.meds import MedsPromptConfig, meds_messages
from .base import Services, Transcript


@dataclass(frozen=True)
class TaskFacts:
    """Per-task facts computed once for all its items."""

    majority: str
    label_set: tuple[str, ...]

    @classmethod
    def of(cls, task: Task) -> TaskFacts:
        labels: set[str] = set()
        if task.spec.labels:  # a declared task's own label set
            labels.update(label.lower() for label in task.spec.labels)
        elif task.spec.scorer == LABEL:
            labels.update(
                instance.reference.strip().rstrip(".").strip().lower() for instance in task.instances
            )
        elif task.spec.scorer == MULTILABEL:  # MedS-Bench HoC reads the ten hallmarks whatever this holds
            for instance in task.instances:
                labels.update(
                    part.strip().rstrip(".").strip().lower() for part in instance.reference.split(",")
                )
        return cls(task.majority_reference(), tuple(sorted(label for label in labels if label)))


@dataclass(frozen=True, repr=False)
class MedsItem:
    task_data: Task
    instance: Instance
    facts: TaskFacts
    prompt: MedsPromptConfig
    scoring: str
    benchmark: str = "meds"

    @property
    def task(self) -> str:
        return self.task_data.task_id

    @property
    def category(self) -> str:
        return self.task_data.category

    @property
    def item_id(self) -> str:
        return self.instance.id

    def __repr__(self) -> str:
        return f"<{self.benchmark} item {self.param_id}>"

    @property
    def param_id(self) -> str:
        return f"{self.category}-{self.task_data.name}-{self.instance.id}"

    @property
    def markers(self) -> tuple[str, ...]:
        return (self.benchmark, self.category)

    @property
    def tags(self) -> dict:
        return {}

    @property
    def reference(self) -> str:
        return self.instance.reference

    def builtin_context(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "task": self.task,
            "category": self.category,
            "id": self.instance.id,
            "input": self.instance.input,
            "reference": self.instance.reference,
            # the majority-class floor; generation tasks have no meaningful majority answer
            "majority": "" if self.task_data.spec.scorer == GENERATION else self.facts.majority,
        }

    def solve(self, services: Services) -> Transcript:
        messages = meds_messages(self.task_data, self.instance, self.prompt)
        return Transcript(messages, services.ask_model(messages, self.builtin_context()).text)

    def score(self, transcript: Transcript, services: Services) -> ItemScore:
        spec, reference = self.task_data.spec, self.instance.reference
        if spec.scorer == JUDGE:
            output, question = transcript.output, self.instance.input
            return judged_score(services.judge, output, reference, question, spec.rubric)
        return score_meds(
            spec, transcript.output, reference, mode=self.scoring, label_set=self.facts.label_set
        )


def meds_items(
    tasks: list[Task], prompt: MedsPromptConfig, scoring: str, *, limit: int | None = None
) -> Iterator[MedsItem]:
    """The items of the first ``limit`` instances of each task (all without one). Each keeps its whole
    task, so its shots, label set and majority answer, and so its prompt and score, are the same
    whatever the limit."""
    for task in tasks:
        facts = TaskFacts.of(task)
        for instance in task.instances[:limit]:
            yield MedsItem(task, instance, facts, prompt, scoring, task.spec.benchmark)
