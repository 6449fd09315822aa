"""Locating the data directory, reading and validating its JSON files, and fingerprinting them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEDS_DIR = "meds-bench"
MEDR_DIR = "medrbench"
DATA_ENV = "MEDBENCH_DATA"


@dataclass(frozen=True)
class LoadError:
    """One problem in one data file: where it is and what is wrong, for the user to fix."""

    path: Path
    location: str  # "line 3 column 5", "/Instances/2/output", "case PMC123", or "" for the whole file
    message: str
    case: str = ""  # the MedR-Bench case it is about ("" for the whole file): one failing item each

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.path}{where}: {self.message}"


class DataFileError(Exception):
    """A data file that cannot be used; carries the LoadError that says why."""

    def __init__(self, error: LoadError) -> None:
        super().__init__(str(error))
        self.error = error


def unreadable(path: Path, exc: Exception) -> LoadError:
    """The LoadError of a file a loader failed on in a way it did not foresee: still one named
    failing item, never a crash of the collection (a file is data, however malformed)."""
    return LoadError(path, "", f"cannot be read ({type(exc).__name__}: {str(exc)[:200]})")


def bundled_fixtures() -> Path:
    """The sample data shipped with the plugin (inside the wheel, or beside the package in a checkout)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "fixtures", package.parent / "fixtures"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the bundled fixtures/ directory is missing from this installation")


def meds_task_files(root: Path) -> list[Path]:
    """MedS-Bench task files under ``root/meds-bench``, in the upstream layout (any folder depth)."""
    base = root / MEDS_DIR
    if not base.is_dir():
        return []
    found = [p for p in base.rglob("task*") if p.suffix in (".json", ".jsonl") and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(base).as_posix())


def medr_case_files(root: Path) -> dict[str, list[Path]]:
    """MedR-Bench case files by kind (``diagnosis``, ``treatment``); a full official file wins over demos."""
    base = root / MEDR_DIR
    found: dict[str, list[Path]] = {}
    for kind in ("diagnosis", "treatment"):
        files = sorted(base.glob(f"{kind}_*.json")) if base.is_dir() else []
        official = [p for p in files if "demo" not in p.name]
        found[kind] = official or files
    return found


def data_files(root: Path) -> list[Path]:
    """Every benchmark file a run over ``root`` reads."""
    medr = medr_case_files(root)
    return meds_task_files(root) + medr["diagnosis"] + medr["treatment"]


def sha256_file(path: Path) -> str:
    import hashlib  # not at plugin load: it costs milliseconds every pytest start pays

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path, *, jsonl_fallback: bool = False, object_pairs_hook: Any = None) -> Any:
    """Parse a JSON file, raising DataFileError with the file and the line/column of the fault.

    Upstream MedS ``.jsonl`` files hold one pretty-printed object, so JSON Lines is only the fallback.
    ``object_pairs_hook`` is json's: it sees every object's keys, duplicates included.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(LoadError(path, f"byte {exc.start}", "not valid UTF-8")) from exc
    except OSError as exc:
        raise DataFileError(LoadError(path, "", f"cannot read file: {exc.strerror}")) from exc
    if not text.strip():
        raise DataFileError(LoadError(path, "", "the file is empty"))
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook)
    except RecursionError as exc:
        raise DataFileError(LoadError(path, "", "nested too deeply to read as JSON")) from exc
    except json.JSONDecodeError as exc:
        if jsonl_fallback:
            lines = [line for line in text.splitlines() if line.strip()]
            try:
                records = [json.loads(line) for line in lines]
            except json.JSONDecodeError:
                records = None
            if records and len(records) == 1 and isinstance(records[0], dict):
                return records[0]
        location = f"line {exc.lineno} column {exc.colno}"
        raise DataFileError(LoadError(path, location, f"invalid JSON: {exc.msg}")) from exc


@functools.cache
def _validator(schema_name: str) -> Any:
    import jsonschema

    schema_path = Path(__file__).with_name("schemas") / schema_name
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def schema_error(document: Any, schema_name: str) -> tuple[str, str] | None:
    """The most relevant schema violation as (JSON pointer, message), or None when valid."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(document))
    if error is None:
        return None
    if _nested_deeper_than(document, MAX_NESTING):  # json reads it when the recursion limit is raised
        return "", "nested too deeply to read as JSON"
    pointer = "/" + "/".join(str(part) for part in error.absolute_path)
    message = error.message  # it quotes the offending value, which may be a whole file
    return pointer, message if len(message) <= MAX_MESSAGE else f"{message[:MAX_MESSAGE]}..."


MAX_NESTING = 64  # real task and case files nest 4-6 levels
MAX_MESSAGE = 300


def _nested_deeper_than(document: Any, limit: int) -> bool:
    """Whether any value sits more than ``limit`` containers deep (iterative: no recursion to overflow)."""
    stack = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)
    return False
