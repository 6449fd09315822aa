"""MedS-Bench prompts under the two protocols.

- ``code`` (the released evaluation code, in its layout: meds-bench.md section 5): k shots in the system
  turn as Input/Output pairs, then the task definition and our instruction sentence; the query alone in
  the user turn. k = 3 for every task, MCQA included.
- ``paper`` (the paper's supplement): zero-shot MCQA, 3 shots elsewhere, labelled Case1..CaseK, all in
  one user turn.

Shots come from the whole task file (``--medbench-limit`` only picks which items run), never include
the query or another instance with the query's input, and are drawn with a seeded RNG, so a prompt
(and its cache key) is the same on every run, every xdist worker and every limit.
"""

from __future__ import annotations

import random
import weakref
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
    """``count`` other instances of the task, none with the query's input, drawn reproducibly for this
    query (in O(count) once the task's repeated inputs are indexed, so a task of 15,000 instances costs
    no more per item than a task of 4)."""
    # the positions of the query's input, ascending (the query's own among them)
    excluded = _repeated_inputs(task).get(query.input) or (query.index,)
    others = len(task.instances) - len(excluded)
    if count <= 0 or others <= 0:
        return []
    rng = random.Random(f"{task.task_id}:{query.index}:{seed}")
    return [
        task.instances[_skipping(pick, excluded)] for pick in rng.sample(range(others), min(count, others))
    ]


def _skipping(pick: int, excluded: tuple[int, ...]) -> int:
    """The position of the ``pick``-th instance (from 0) that is not at one of the ``excluded``
    positions (ascending). With the query alone excluded this is the draw every earlier version made."""
    for position in excluded:
        if pick < position:
            break
        pick += 1
    return pick


# per task (by identity, while it lives): the positions of each input that occurs more than once
_REPEATS: dict[int, tuple[weakref.ref, dict[str, tuple[int, ...]]]] = {}


def _repeated_inputs(task: Task) -> dict[str, tuple[int, ...]]:
    entry = _REPEATS.get(id(task))
    if entry is not None and entry[0]() is task:
        return entry[1]
    positions: dict[str, list[int]] = {}
    for position, instance in enumerate(task.instances):
        positions.setdefault(instance.input, []).append(position)
    repeats = {text: tuple(where) for text, where in positions.items() if len(where) > 1}
    key = id(task)
    _REPEATS[key] = (weakref.ref(task, lambda _, key=key: _REPEATS.pop(key, None)), repeats)
    return repeats


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
    # the released code's layout: each shot "Input:\n{input}\n\nOutput:\n{output}\n", the shots joined
    # by a blank line, then a blank line, the definition and (with no space) the instruction sentence;
    # the user turn "Input:\n{input}\nOutput:\n". Template files lose their final newline, so the
    # trailing ones are added here. The sentence is ours, and without shots it mentions none.
    if shots:
        rendered = "\n\n".join(
            template("meds_shot").format(input=s.input, output=s.reference) + "\n" for s in shots
        )
        system = template("meds_system_code").format(shots=rendered, definition=task.definition)
    else:
        system = template("meds_system_code_zero_shot").format(definition=task.definition)
    user = template("meds_user_code").format(input=query.input) + "\n"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
