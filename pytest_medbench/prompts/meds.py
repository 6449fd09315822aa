"""MedS-Bench prompts under the two protocols.

- ``code`` (the released evaluation code): k shots in the system turn as Input/Output pairs, then the
  task definition; the query alone in the user turn. k = 3 for every task, MCQA included.
- ``paper`` (the paper's supplement): zero-shot MCQA, 3 shots elsewhere, labelled Case1..CaseK, all in
  one user turn.

Shots come from the same task file, never include the query, and are drawn with a seeded RNG, so
a prompt (and its cache key) is the same on every run and every xdist worker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..data.meds import Instance, Task
from .templates import template


@dataclass(frozen=True)
class MedsPromptConfig:
    protocol: str = "code"
    shots: int | None = None  # None: the protocol's default
    seed: int = 0
    max_chars: int = 24_000  # shots are dropped, last first, until the prompt fits; the query never is

    def shot_count(self, task: Task) -> int:
        if self.shots is not None:
            return self.shots
        return 0 if self.protocol == "paper" and task.category == "mcqa" else 3


def draw_shots(task: Task, query: Instance, count: int, seed: int) -> list[Instance]:
    """``count`` other instances of the task, drawn reproducibly for this query (in O(count), so a task
    of 15,000 instances costs no more per item than a task of 4)."""
    others = len(task.instances) - 1
    if count <= 0 or others <= 0:
        return []
    rng = random.Random(f"{task.task_id}:{query.index}:{seed}")
    picks = rng.sample(range(others), min(count, others))
    return [task.instances[i if i < query.index else i + 1] for i in picks]


def meds_messages(task: Task, query: Instance, config: MedsPromptConfig) -> list[dict[str, str]]:
    shots = draw_shots(task, query, config.shot_count(task), config.seed)
    while True:
        messages = _render(task, query, shots, config.protocol)
        if not shots or sum(len(m["content"]) for m in messages) <= config.max_chars:
            return messages
        shots = shots[:-1]


def _render(task: Task, query: Instance, shots: list[Instance], protocol: str) -> list[dict[str, str]]:
    if protocol == "paper":
        rendered = "".join(
            template("meds_shot_paper").format(number=n, input=s.input, output=s.reference) + "\n\n"
            for n, s in enumerate(shots, start=1)
        )
        user = template("meds_user_paper").format(
            shots=rendered, definition=task.definition, input=query.input
        )
        return [{"role": "user", "content": user}]
    rendered = "\n\n".join(template("meds_shot").format(input=s.input, output=s.reference) for s in shots)
    system = template("meds_system_code").format(shots=rendered, definition=task.definition).strip()
    user = template("meds_user_code").format(input=query.input)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
