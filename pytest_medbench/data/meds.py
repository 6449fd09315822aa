"""MedS-Bench loader: task files -> frozen Task / Instance records."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .declared import Declarations, declared_task_files, how_to_declare
from .files import DataFileError, LoadError, meds_task_files, read_json, schema_error, unreadable
from .meds_tasks import TaskSpec, task_id_in, task_spec


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


def _is_strings(value: object, min_items: int = 0) -> bool:
    return type(value) is list and len(value) >= min_items and all(type(v) is str for v in value)


def _plainly_valid(document: object) -> bool:
    """True when ``document`` certainly meets meds_task.schema.json, checked in plain Python.

    jsonschema walks every instance (0.92 s of CPU over the 35,000 of bench/real_size.py, against
    0.006 s here), so it is asked only about a document this finds fault with, for the precise
    message. Exact types, as the schema's: a bool is no integer id.
    """
    if type(document) is not dict or not _is_strings(document.get("Definition"), 1):
        return False
    if not all(
        _is_strings(document[key]) for key in ("Input_language", "Output_language") if key in document
    ):
        return False
    instances = document.get("Instances")
    if type(instances) is not list:
        return False
    for raw in instances:
        if type(raw) is not dict or type(raw.get("input")) is not str:
            return False
        output = raw.get("output")
        if type(output) is not str and not _is_strings(output, 1):
            return False
        if "id" in raw and type(raw["id"]) not in (str, int):
            return False
    return True


def meds_task_of(path: Path, declarations: Declarations | None = None) -> str | None:
    """The MedS-Bench task a file under ``meds-bench/`` is scored as: the known task id its name
    starts with (``task57`` for ``task57_medqa_usmle.json``, ``task57-medqa.jsonl``, ``task57.json``),
    unless a declaration keyed by the file's own stem claims it; else None (a declared task, or a
    data error). The loader and the leaderboard's absent-task list both ask this."""
    if declarations is not None and declarations.declares_stem(path):
        return None
    task_id = task_id_in(path.name)
    return task_id if task_id is not None and task_spec(task_id) is not None else None


def load_task(path: Path, declarations: Declarations | None = None, *, own: bool = False) -> Task:
    """Read and validate one task file; raises DataFileError naming the file and the fault.

    A known MedS-Bench task id decides the scoring, unless a declaration keyed by the file stem
    says otherwise; any other file needs a declaration. ``own``: a file of ``custom/`` or
    ``tasks_dir`` (``declared_task_files``), never a MedS-Bench task, whatever its name: own tasks
    never mix into ``meds``.
    """
    task_id = None if own else meds_task_of(path, declarations)
    spec = task_spec(task_id) if task_id is not None else None
    if spec is None and declarations is not None:
        spec = declarations.spec_for(path)
    if spec is None:
        raise DataFileError(LoadError(path, "", how_to_declare(path)))
    document = read_json(path, jsonl_fallback=path.suffix == ".jsonl")
    problem = None if _plainly_valid(document) else schema_error(document, "meds_task.schema.json")
    if problem:
        raise DataFileError(LoadError(path, *problem))
    if not document["Instances"]:  # never silently absent: a task with nothing to evaluate says so
        raise DataFileError(LoadError(path, "/Instances", "no instances: the task has nothing to evaluate"))
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
    error per file that could not be used.

    Two files with one task id (``task57_a.json``, ``task57_b.json``) would pool their instances
    under one task and overwrite each other's items: neither runs, and one error names both."""
    tasks: list[Task] = []
    errors: list[LoadError] = []
    paths = [(path, False) for path in meds_task_files(root)]
    if declarations is not None:
        paths += [(path, True) for path in declared_task_files(root, tasks_dir)]
    for path, is_own in paths:
        try:
            tasks.append(load_task(path, declarations, own=is_own))
        except DataFileError as exc:
            errors.append(exc.error)
        except Exception as exc:  # any fault of the file is its load_error item
            errors.append(unreadable(path, exc))
    by_id: dict[tuple[str, str], list[Task]] = {}
    for task in tasks:
        by_id.setdefault((task.spec.benchmark, task.task_id), []).append(task)
    for (_, task_id), same in by_id.items():
        if len(same) > 1:
            others = ", ".join(str(task.path) for task in same[1:])
            message = f"task id {task_id} is also in {others}: keep one file per task (none of them ran)"
            errors.append(LoadError(same[0].path, "", message))
    return [task for task in tasks if len(by_id[(task.spec.benchmark, task.task_id)]) == 1], errors
