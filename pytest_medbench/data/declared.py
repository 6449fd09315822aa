"""Declared tasks: a user's own task files in the MedS-Bench ``Definition`` / ``Instances`` format,
scored as a declaration says (pyproject ``[tool.medbench.tasks.<task_id>]`` or a sidecar
``<file stem>.medbench.toml``) and reported under their own benchmark (``custom`` by default).

Where they are found: ``<data dir>/custom/`` and the ``[tool.medbench] tasks_dir`` folder (any
depth), plus any file under ``<data dir>/meds-bench/`` that is not a known MedS-Bench task. A file
there with no declaration is a data error that says how to declare it, never skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import meds_tasks as kinds
from .files import MEDS_DIR, DataFileError, LoadError
from .meds_tasks import TaskSpec, task_id_in

CUSTOM_DIR = "custom"
SIDECAR_SUFFIX = ".medbench.toml"
DEFAULT_BENCHMARK = "custom"
SCORERS = {
    "mcqa": kinds.MCQA,
    "label": kinds.LABEL,
    "extraction": kinds.EXTRACTION,
    "ner": kinds.NER,
    "multilabel": kinds.MULTILABEL,
    "generation": kinds.GENERATION,
    "judge": kinds.JUDGE,
}
LANGUAGES = ("en", "zh", "ja", "fr", "ru", "es")
THRESHOLD_SCORERS = (kinds.GENERATION, kinds.NER)  # the graded ones; the others pass when correct
KEYS = ("scorer", "category", "language", "labels", "pass_threshold", "benchmark", "rubric")
RESERVED_BENCHMARKS = ("meds", "medr")  # own tasks never mix into the published benchmarks' averages
_NAME = re.compile(r"^[A-Za-z0-9_]+$")  # a segment of a gate path such as custom.<task>.accuracy


class DeclarationError(ValueError):
    """A declaration that cannot be used; the message names where it is and what is wrong."""


def how_to_declare(path: Path) -> str:
    """The data error of a task file nobody declared: what to write, and where."""
    return (
        "not a known MedS-Bench task and no scoring is declared for it: declare it in pyproject.toml as "
        f'[tool.medbench.tasks.{path.stem}] with scorer = "mcqa" (or label, extraction, ner, multilabel, '
        f"generation, judge), or in a sidecar file {path.stem}{SIDECAR_SUFFIX} beside it"
    )


def parse_declaration(task_id: str, table: Any, where: str) -> TaskSpec:
    """A TaskSpec from one declaration table; raises DeclarationError naming ``where`` and the key."""

    def fail(message: str) -> DeclarationError:
        return DeclarationError(f"{where}: {message}")

    if not _NAME.match(task_id):
        raise fail(f"task id {task_id!r} must be letters, digits and underscores (it is part of gate paths)")
    if not isinstance(table, dict):
        raise fail("expected a table of scorer, category, language, labels, pass_threshold")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    scorer = table.get("scorer")
    if scorer not in SCORERS:
        raise fail(f"scorer {scorer!r} is not one of {', '.join(SCORERS)}")
    category = table.get("category", task_id)
    benchmark = table.get("benchmark", DEFAULT_BENCHMARK)
    for key, value in (("category", category), ("benchmark", benchmark)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise fail(f"{key} {value!r} must be letters, digits and underscores")
    if benchmark in RESERVED_BENCHMARKS:
        raise fail(f"benchmark {benchmark!r} is reserved for the published benchmark")
    language = table.get("language", "en")
    if language not in LANGUAGES:
        raise fail(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    labels = table.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
        raise fail("labels must be a list of non-empty strings")
    if labels and SCORERS[scorer] not in (kinds.LABEL, kinds.MULTILABEL):
        raise fail("labels apply to the label and multilabel scorers only")
    threshold = table.get("pass_threshold")
    if threshold is not None:
        if SCORERS[scorer] not in THRESHOLD_SCORERS:
            raise fail("pass_threshold applies to the generation (ROUGE-L) and ner (F1) scorers only")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise fail(f"pass_threshold {threshold!r} must be a number from 0 to 1")
    rubric = table.get("rubric", "")
    if not isinstance(rubric, str):
        raise fail("rubric must be a string")
    return TaskSpec(
        task_id,
        category,
        SCORERS[scorer],
        language,
        benchmark=benchmark,
        labels=tuple(label.strip() for label in labels),
        pass_threshold=None if threshold is None else float(threshold),
        rubric=rubric,
    )


def read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataFileError(LoadError(path, "", f"cannot read the declaration: {exc}")) from exc


class Declarations:
    """The pyproject declarations (checked when the run starts) and the sidecars (read per file)."""

    def __init__(self, tables: Any, pyproject: Path) -> None:
        if not isinstance(tables, dict):
            raise DeclarationError(f"{pyproject}: [tool.medbench.tasks] must be a table of tasks")
        self.specs = {
            task_id: parse_declaration(task_id, table, f"{pyproject} [tool.medbench.tasks.{task_id}]")
            for task_id, table in tables.items()
        }

    def declares_stem(self, path: Path) -> bool:
        """Whether a declaration is keyed by this file's own stem (a sidecar, or pyproject's table of
        that name): it then decides the scoring, even of a name that starts with a MedS-Bench task id."""
        return path.stem in self.specs or path.with_name(path.stem + SIDECAR_SUFFIX).is_file()

    def spec_for(self, path: Path) -> TaskSpec | None:
        """The declared spec of a task file: its sidecar, else pyproject by file stem, else by its
        ``taskNNN`` prefix; None when nothing declares it. A bad sidecar is a DataFileError."""
        sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
        if sidecar.is_file():
            try:
                return parse_declaration(path.stem, read_toml(sidecar), str(sidecar))
            except DeclarationError as exc:
                raise DataFileError(LoadError(sidecar, "", str(exc).removeprefix(f"{sidecar}: "))) from None
        if path.stem in self.specs:
            return self.specs[path.stem]
        prefix = task_id_in(path.stem)
        return self.specs.get(prefix) if prefix else None


def declared_task_files(root: Path, tasks_dir: Path | None) -> list[Path]:
    """Candidate own-task files: everything in ``custom/`` and ``tasks_dir``, and the files under
    ``meds-bench/`` that ``meds_task_files`` leaves out (no ``task`` prefix)."""
    found: set[Path] = set()
    for folder in (root / CUSTOM_DIR, tasks_dir):
        if folder is not None and folder.is_dir():
            found.update(p.resolve() for p in folder.rglob("*") if p.suffix in (".json", ".jsonl"))
    meds = root / MEDS_DIR
    if meds.is_dir():
        found.update(
            p.resolve()
            for p in meds.rglob("*")
            if p.suffix in (".json", ".jsonl") and not p.name.startswith("task")
        )
    return sorted(path for path in found if path.is_file())


def declared_files(root: Path, tasks_dir: Path | None) -> list[Path]:
    """The own-task files and their sidecars, for the leaderboard's data fingerprints."""
    files = declared_task_files(root, tasks_dir)
    sidecars = [path.with_name(path.stem + SIDECAR_SUFFIX) for path in files]
    return sorted(files + [sidecar for sidecar in sidecars if sidecar.is_file()])
