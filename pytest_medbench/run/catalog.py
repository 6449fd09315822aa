"""The run's items, from the data directory and pyproject's declared tasks: data -> items.

Each benchmark's files are loaded once, checked against the data directory's lock file, and made
into items, the first ``--medbench-limit`` of each task or setting (a MedS-Bench item still draws its
shots from its whole task file); a file that fails to load becomes one failing item.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ..data.declared import CUSTOM_DIR, DEFAULT_BENCHMARK
from ..data.files import MEDR_DIR, MEDS_DIR, LoadError, meds_task_files
from ..items.base import BrokenFile, EvalItem
from ..options import Settings


class Catalog:
    """The items a run evaluates (every process makes the same ones)."""

    def __init__(self, settings: Settings, config: pytest.Config) -> None:
        self.settings = settings
        self.declarations, self.tasks_dir = _declared_tasks(config)

    def check_data_dir(self) -> None:
        root = self.settings.data_dir
        if not root.is_dir():
            raise pytest.UsageError(f"--medbench-data {root}: no such directory")
        if not any((root / folder).is_dir() for folder in (MEDS_DIR, MEDR_DIR, CUSTOM_DIR)):
            raise pytest.UsageError(
                f"--medbench-data {root}: holds none of {MEDS_DIR}/, {MEDR_DIR}/, {CUSTOM_DIR}/"
            )

    @functools.cached_property
    def meds_items(self) -> list[EvalItem]:
        from ..data.meds import load_meds
        from ..items.meds import meds_items
        from ..prompts.meds import MedsPromptConfig

        tasks, errors = self._checked_against_lock(
            MEDS_DIR, *load_meds(self.settings.data_dir, self.declarations, self.tasks_dir)
        )
        config = MedsPromptConfig(self.settings.protocol, self.settings.shots, self.settings.seed or 0)
        broken = self._broken(
            [(_benchmark_of(error.path, self.settings.data_dir), error) for error in errors]
        )
        # the limit picks the items; each still draws its shots from its whole task file
        items = meds_items(tasks, config, self.settings.scoring, limit=self.settings.limit)
        return [*items, *broken]

    @functools.cached_property
    def medr_items(self) -> list[EvalItem]:
        from ..data.medr import load_medr
        from ..items.medr import medr_items

        cases, errors = self._checked_against_lock(MEDR_DIR, *load_medr(self.settings.data_dir))
        items: list[EvalItem] = list(medr_items(cases))
        if self.settings.limit is not None:
            per_setting: dict[str, int] = {}
            kept = []
            for item in items:
                per_setting[item.task] = per_setting.get(item.task, 0) + 1
                if per_setting[item.task] <= self.settings.limit:
                    kept.append(item)
            items = kept
        return [*items, *self._broken([("medr", error) for error in errors])]

    def _broken(self, errors: list[tuple[str, LoadError]]) -> list[BrokenFile]:
        """One failing item per error, each its own record: its id is the file's path in the data
        directory (and the case); broken files that share a stem get that path in their pytest ids."""
        roots = [(self.settings.data_dir, "")]
        if self.tasks_dir is not None:
            roots.append((self.tasks_dir, f"{self.tasks_dir.name}/"))
        broken = [BrokenFile(benchmark, error, _relative(error.path, roots)) for benchmark, error in errors]
        ids = Counter(item.param_id for item in broken)
        return [
            dataclasses.replace(item, label=item.where.rpartition(".")[0] or item.where)
            if ids[item.param_id] > 1
            else item
            for item in broken
        ]

    @functools.cached_property
    def _lock_errors(self) -> list[LoadError]:
        from ..data.lock import lock_errors

        return lock_errors(self.settings.data_dir)

    def _checked_against_lock(self, folder: str, loaded: list[Any], errors: list[Any]) -> tuple[list, list]:
        """Drop what was loaded from files that differ from the data directory's lock file, and add
        one error per such file (and for an unreadable lock), under the benchmark that reads it."""
        root = self.settings.data_dir
        mine = [
            error
            for error in self._lock_errors
            if error.path.is_relative_to(root / folder)
            or (error.path.parent == root and (folder == MEDS_DIR or not (root / MEDS_DIR).is_dir()))
        ]
        bad = {error.path for error in mine}
        kept = [entry for entry in loaded if entry.path not in bad]
        return kept, [error for error in errors if error.path not in bad] + mine

    def absent_meds_tasks(self) -> dict[str, str]:
        """MedS-Bench tasks with no file in the data directory, so they are never silently absent."""
        from ..data.meds import meds_task_of
        from ..data.meds_tasks import absent_tasks

        files = meds_task_files(self.settings.data_dir)
        return absent_tasks({task for path in files if (task := meds_task_of(path, self.declarations))})


def _declared_tasks(config: pytest.Config) -> tuple[Any, Path | None]:
    """pyproject's task declarations (checked now: a bad one is a usage error before any item runs)
    and its ``tasks_dir`` (relative to the rootdir)."""
    from ..data.declared import DeclarationError, Declarations
    from ..options import pyproject_table

    table = pyproject_table(config)
    rootdir = Path(str(config.rootpath))
    try:
        declarations = Declarations(table.get("tasks", {}), rootdir / "pyproject.toml")
    except DeclarationError as exc:
        raise pytest.UsageError(str(exc)) from None
    tasks_dir = table.get("tasks_dir")
    if tasks_dir is None:
        return declarations, None
    folder = rootdir / str(tasks_dir)
    if not folder.is_dir():
        where = rootdir / "pyproject.toml"
        raise pytest.UsageError(f"{where}: [tool.medbench] tasks_dir {folder}: no such directory")
    return declarations, folder


def _benchmark_of(path: Path, data_dir: Path) -> str:
    """Which benchmark a file that failed to load reports under: meds for the MedS-Bench folder's
    task files, else the user's own tasks."""
    inside = path.resolve().is_relative_to((data_dir / MEDS_DIR).resolve())
    return "meds" if inside and path.name.startswith("task") else DEFAULT_BENCHMARK


def _relative(path: Path, roots: list[tuple[Path, str]]) -> str:
    """``path`` as a stable name: relative to the first root that holds it (with that root's
    prefix), else as given."""
    resolved = path.resolve()
    for root, prefix in roots:
        base = root.resolve()
        if resolved.is_relative_to(base):
            return prefix + resolved.relative_to(base).as_posix()
    return path.as_posix()
