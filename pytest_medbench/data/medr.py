"""MedR-Bench loader: case files -> frozen Case records, with the ancillary-test split."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .files import DataFileError, LoadError, medr_case_files, read_json, schema_error, unreadable

ANCILLARY_MARKER = "Ancillary Tests"
_ENTRY = re.compile(r"^\s*[-*]?\s*\**([^:*]+?)\**\s*:\**\s*(.*)$")


@dataclass(frozen=True)
class Case:
    case_id: str
    kind: str  # "diagnosis" or "treatment"
    path: Path
    summary: str  # the full case summary (never the raw article, which leaks the answer)
    reference: str  # diagnosis_results or treatment_plan_results: what the judge compares against
    reference_reasoning: str  # differential_diagnosis / treatment_planning_analysis
    final_diagnosis: str
    body_systems: tuple[str, ...]
    disorders: tuple[str, ...]
    rare_diseases: tuple[str, ...]

    @property
    def rare(self) -> bool:
        return bool(self.rare_diseases)

    def split_ancillary(self) -> tuple[str, str] | None:
        """(summary without ancillary tests, ancillary block), split at the first line naming them.

        None when the summary has no such line (the dialogue settings cannot run on that case).
        """
        lines = self.summary.strip().split("\n")
        for number, line in enumerate(lines):
            if ANCILLARY_MARKER in line:
                return "\n".join(lines[:number]), "\n".join(lines[number:])
        return None


def ancillary_entries(ancillary: str) -> list[tuple[str, str]]:
    """(test name, full line) for each finding in the hidden ancillary block.

    "- **Laboratory Findings:** raised CRP" is named by its label; an unlabelled list entry ("- MRI
    confirmed ...") is named by its first words. The marker line itself counts only when it carries
    a finding after its colon.
    """
    entries = []
    for number, line in enumerate(ancillary.splitlines()):
        text = line.strip()
        if not re.search(r"[A-Za-z]", text):
            continue
        match = _ENTRY.match(line)
        if match and match.group(1).strip():
            name, value = match.group(1).strip(), match.group(2).strip()
            if number == 0 and not value:
                continue
        elif number == 0:
            continue
        else:
            name = " ".join(text.lstrip("-*• ").split()[:6])
        entries.append((name, text))
    return entries


def slug(label: str) -> str:
    """A marker-safe name for a category label: 'Brain and Nerves' -> 'brain_and_nerves'."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def _case(path: Path, kind: str, case_id: str, record: dict) -> Case:
    generated = record["generate_case"]
    if kind == "diagnosis":
        reference = generated.get("diagnosis_results", "")
        reasoning = generated.get("differential_diagnosis", "")
    else:
        reference = generated.get("treatment_plan_results", "")
        reasoning = generated.get("treatment_planning_analysis", "")
    if not reference.strip():
        field = "diagnosis_results" if kind == "diagnosis" else "treatment_plan_results"
        message = f"generate_case.{field} is missing or empty"
        raise DataFileError(LoadError(path, f"case {case_id}", message, case_id))
    return Case(
        case_id=case_id,
        kind=kind,
        path=path,
        summary=generated["case_summary"],
        reference=reference,
        reference_reasoning=reasoning,
        final_diagnosis=generated.get("final_diagnosis", ""),
        body_systems=tuple(record.get("body_category", ())),
        disorders=tuple(record.get("disorder_category", ())),
        rare_diseases=tuple(record.get("checked_rare_disease", ())),
    )


class _Keys(dict):
    """A JSON object that wrote some key more than once (json keeps the last copy): the counts."""

    counts: dict[str, int]


def _noting_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    repeated = _Keys(document)
    repeated.counts = {}
    for key, _ in pairs:
        repeated.counts[key] = repeated.counts.get(key, 0) + 1
    return repeated


def load_case_file(path: Path, kind: str) -> tuple[list[Case], list[LoadError], dict[str, int]]:
    """The valid cases of one file, one error per bad case (the others still load), and every case
    id the file writes with its count (a key written twice is a duplicate json.loads hides)."""
    document = read_json(path, object_pairs_hook=_noting_repeated_keys)
    if not isinstance(document, dict):
        raise DataFileError(LoadError(path, "/", "expected an object keyed by case id"))
    cases: list[Case] = []
    errors: list[LoadError] = []
    for case_id, record in document.items():
        problem = schema_error(record, "medr_case.schema.json")
        if problem:
            pointer, message = problem
            errors.append(LoadError(path, f"case {case_id} {pointer}", message, case_id))
            continue
        try:
            cases.append(_case(path, kind, case_id, record))
        except DataFileError as exc:
            errors.append(exc.error)
    counts = document.counts if isinstance(document, _Keys) else dict.fromkeys(document, 1)
    return cases, errors, counts


def load_medr(root: Path) -> tuple[list[Case], list[LoadError]]:
    """Every valid case under ``root``, diagnosis cases first, and one error per bad file or case.

    A case id written twice among the files of one kind (twice in one file, or in two files) is
    one data error naming the files, and no copy runs: which one is right is the user's call, and
    the copies would share one item."""
    cases: list[Case] = []
    errors: list[LoadError] = []
    for kind, paths in medr_case_files(root).items():
        found: dict[str, dict[Path, int]] = {}  # case id -> file -> copies
        kind_cases: list[Case] = []
        kind_errors: list[LoadError] = []
        for path in paths:
            try:
                file_cases, file_errors, counts = load_case_file(path, kind)
            except DataFileError as exc:
                errors.append(exc.error)
                continue
            except Exception as exc:  # any fault of the file is its load_error item
                errors.append(unreadable(path, exc))
                continue
            kind_cases += file_cases
            kind_errors += file_errors
            for case_id, copies in counts.items():
                found.setdefault(case_id, {})[path] = copies
        duplicated = {case_id: files for case_id, files in found.items() if sum(files.values()) > 1}
        for case_id, files in duplicated.items():
            where = ", ".join(f"{copies} in {path}" for path, copies in files.items())
            message = (
                f"case id written {sum(files.values())} times ({where}): keep one copy (none of them ran)"
            )
            errors.append(LoadError(next(iter(files)), f"case {case_id}", message, case_id))
        errors += [error for error in kind_errors if error.case not in duplicated]
        cases += [case for case in kind_cases if case.case_id not in duplicated]
    return cases, errors
