"""``medbench-data.lock.json``: which Hub repos and commits a data directory came from, and the size
and sha256 of every file fetched from them, so a run can prove it reads exactly those bytes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .files import MEDR_DIR, LoadError, sha256_file

LOCK_NAME = "medbench-data.lock.json"
LOCK_VERSION = 1
OUTPUTS_DIR = f"{MEDR_DIR}/released-outputs"  # released model outputs: fetched and locked, never run


@dataclass(frozen=True)
class LockedRepo:
    repo: str  # "Henrychur/MedS-Bench"
    commit: str  # the 40-hex commit the revision resolved to
    dataset: str  # "meds-bench", "medrbench" or "medrbench-outputs"


@dataclass(frozen=True)
class LockedFile:
    path: str  # relative to the data directory, e.g. "meds-bench/MCQA/task57_x.jsonl"
    repo: str
    source: str  # the path inside the repo
    size: int
    sha256: str


@dataclass(frozen=True)
class Lock:
    repos: tuple[LockedRepo, ...]
    files: tuple[LockedFile, ...]

    def commit_of(self, repo: str) -> str | None:
        return next((entry.commit for entry in self.repos if entry.repo == repo), None)

    def replacing(self, repos: list[LockedRepo], files: list[LockedFile]) -> Lock:
        """This lock with the entries of ``repos`` replaced by a new fetch of them."""
        names = {entry.repo for entry in repos}
        kept_repos = [entry for entry in self.repos if entry.repo not in names]
        kept_files = [entry for entry in self.files if entry.repo not in names]
        return Lock(
            tuple(sorted([*kept_repos, *repos], key=lambda e: e.repo)),
            tuple(sorted([*kept_files, *files], key=lambda e: e.path)),
        )


class LockFileError(Exception):
    """The lock file exists but cannot be read; carries the LoadError naming it."""

    def __init__(self, error: LoadError) -> None:
        super().__init__(str(error))
        self.error = error


def read_lock(root: Path) -> Lock | None:
    """The lock of data directory ``root``; None when it has none."""
    path = root / LOCK_NAME
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("lock_version") != LOCK_VERSION:
            raise ValueError(f"lock_version {document.get('lock_version')!r}, expected {LOCK_VERSION}")
        return Lock(
            tuple(LockedRepo(**entry) for entry in document["repos"]),
            tuple(LockedFile(**entry) for entry in document["files"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LockFileError(
            LoadError(path, "", f"not a readable lock file ({exc}); run medbench fetch again")
        ) from exc


def write_lock(root: Path, lock: Lock) -> Path:
    """Write atomically, so an interrupted fetch never leaves half a lock."""
    path = root / LOCK_NAME
    document = {
        "lock_version": LOCK_VERSION,
        "repos": [asdict(entry) for entry in lock.repos],
        "files": [asdict(entry) for entry in lock.files],
    }
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def file_problem(root: Path, entry: LockedFile) -> str | None:
    """Why the file on disk is not the locked one (missing, other size, other sha256), or None."""
    path = root / entry.path
    if not path.is_file():
        return f"missing: {LOCK_NAME} lists it (from {entry.repo}); run medbench fetch again"
    size = path.stat().st_size
    if size != entry.size:  # the cheap test first: most changes change the size
        return f"changed since fetch: {size} bytes, {LOCK_NAME} says {entry.size}"
    digest = sha256_file(path)
    if digest != entry.sha256:
        return f"changed since fetch: sha256 {digest[:12]}..., {LOCK_NAME} says {entry.sha256[:12]}..."
    return None


def lock_errors(root: Path, *, include_outputs: bool = False) -> list[LoadError]:
    """One error per locked file that is missing or changed (and one for an unreadable lock).

    A run checks what it reads; released model outputs are left to ``medbench fetch --verify``.
    """
    try:
        lock = read_lock(root)
    except LockFileError as exc:
        return [exc.error]
    return [] if lock is None else locked_file_errors(root, lock, include_outputs=include_outputs)


def locked_file_errors(root: Path, lock: Lock, *, include_outputs: bool = False) -> list[LoadError]:
    """One error per file of ``lock`` that is missing or changed under ``root``."""
    errors = []
    for entry in lock.files:
        if not include_outputs and entry.path.startswith(OUTPUTS_DIR + "/"):
            continue
        problem = file_problem(root, entry)
        if problem:
            errors.append(LoadError(root / entry.path, "", problem))
    return errors
