"""MedS-Bench loader: task files -> frozen Task / Instance records."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .declared import Declarations, declared_task_files, how_to_declare
from .files import DataFileError, LoadError, meds_task_files, read_json, schema_error
from .meds_tasks import TaskSpec, task_spec

_TASK_ID = re.compile(r"^(task\d+)")


@dataclass(frozen=True)
class Instance:
    """One test instance; ``reference`` is the gold output (``output[0]`` when the file holds a list)."""

    id: str
    index: int
    input: str
    reference: str


@dataclass(frozen=True)
class Task:
    name: str  # file stem, e.g. task57_medqa_usmle
    path: Path
    spec: TaskSpec
    definition: str
    instances: tuple[Instance, ...] = field(repr=False)

    @property
    def task_id(self) -> str:
        return self.spec.task_id

    @property
    def category(self) -> str:
        return self.spec.category

    def majority_reference(self) -> str:
        """The most frequent gold output (ties: the first seen); the majority-class baseline's answer."""
        counts = Counter(instance.reference for instance in self.instances)
        return counts.most_common(1)[0][0] if counts else ""


def load_task(path: Path, declarations: Declarations | None = None) -> Task:
    """Read and validate one task file; raises DataFileError naming the file and the fault.

    A known MedS-Bench task id decides the scoring; any other file needs a declaration.
    """
    match = _TASK_ID.match(path.name)
    spec = task_spec(match.group(1)) if match else None
    if spec is None and declarations is not None:
        spec = declarations.spec_for(path)
    if spec is None:
        raise DataFileError(LoadError(path, "", how_to_declare(path)))
    document = read_json(path, jsonl_fallback=path.suffix == ".jsonl")
    problem = schema_error(document, "meds_task.schema.json")
    if problem:
        raise DataFileError(LoadError(path, *problem))
    instances = []
    seen: set[str] = set()
    for index, raw in enumerate(document["Instances"]):
        instance_id = str(raw.get("id", index))
        if instance_id in seen:
            raise DataFileError(
                LoadError(path, f"/Instances/{index}/id", f"duplicate instance id {instance_id!r}")
            )
        seen.add(instance_id)
        output = raw["output"]
        reference = output[0] if isinstance(output, list) else output
        instances.append(Instance(instance_id, index, raw["input"], reference))
    return Task(path.stem, path, spec, document["Definition"][0], tuple(instances))


def load_meds(
    root: Path, declarations: Declarations | None = None, tasks_dir: Path | None = None
) -> tuple[list[Task], list[LoadError]]:
    """Every valid task under ``root`` (declared ones included, see ``data.declared``), and one
    error per file that could not be used; a declared task id used twice is an error too."""
    tasks: list[Task] = []
    errors: list[LoadError] = []
    paths = meds_task_files(root)
    if declarations is not None:
        paths += declared_task_files(root, tasks_dir)
    declared_ids: set[tuple[str, str]] = set()
    for path in paths:
        try:
            task = load_task(path, declarations)
        except DataFileError as exc:
            errors.append(exc.error)
            continue
        if task.spec.benchmark != "meds":
            key = (task.spec.benchmark, task.task_id)
            if key in declared_ids:
                message = f"task id {task.task_id} is already declared by another file"
                errors.append(LoadError(path, "", message))
                continue
            declared_ids.add(key)
        tasks.append(task)
    return tasks, errors
