"""Deployment gates: ``meds.mcqa.accuracy>=60`` checked against a leaderboard.

A gate names a leaderboard entry by a dotted path: the benchmark, then optionally a category or a
task, then a metric (``accuracy``, ``f1``, ...) or an entry count (``errors``, ``pass_rate``, ``n``,
``passed``): ``medr.oracle_diagnosis.accuracy``, ``meds.task57.accuracy``, ``medr.accuracy``,
``meds.errors``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
COUNTS = ("n", "passed", "errors", "pass_rate")
_GATE = re.compile(r"^\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+){1,2})\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


class GateError(ValueError):
    """A malformed gate, or one whose path names nothing in the leaderboard (a usage error)."""


@dataclass(frozen=True)
class Gate:
    path: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = _GATE.match(text)
        if not match:
            raise GateError(
                f"malformed gate {text!r}: expected PATH OP NUMBER, e.g. 'meds.mcqa.accuracy>=60' "
                f"(operators: {' '.join(OPERATORS)})"
            )
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def __str__(self) -> str:
        return f"{self.path}{self.op}{self.threshold:g}"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    value: float | None  # None: the metric exists but could not be computed (no scored item)

    @property
    def passed(self) -> bool:
        return self.value is not None and OPERATORS[self.gate.op](self.value, self.gate.threshold)

    def describe(self) -> str:
        shown = "not computed" if self.value is None else f"{self.value:g}"
        return f"{self.gate.path} = {shown} (needs {self.gate.op} {self.gate.threshold:g})"


def _entries(leaderboard: dict[str, Any]) -> dict[str, dict]:
    """Every gateable entry by its dotted prefix: "meds", "meds.mcqa", "meds.task57"."""
    entries: dict[str, dict] = {}
    for entry in leaderboard["benchmarks"]:
        entries[entry["benchmark"]] = entry
    for entry in leaderboard["tasks"]:
        entries[f"{entry['benchmark']}.{entry['task']}"] = entry
    for entry in leaderboard["categories"]:  # a category wins over a task of the same name
        entries[f"{entry['benchmark']}.{entry['category']}"] = entry
    return entries


def valid_paths(leaderboard: dict[str, Any]) -> list[str]:
    paths = []
    for prefix, entry in sorted(_entries(leaderboard).items()):
        paths += [f"{prefix}.{name}" for name in sorted(entry["metrics"])]
        paths += [f"{prefix}.{name}" for name in COUNTS]
    return paths


def _names(entry: dict) -> set[str]:
    """The metrics an entry reports: with a value, or as not judged (no item could be scored on it)."""
    return set(entry["metrics"]) | set(entry.get("not_judged", ()))


def _tasks_under(leaderboard: dict[str, Any], prefix: str) -> list[dict]:
    """The task entries a gate prefix covers: a benchmark's, a category's, or the task itself."""
    benchmark, _, name = prefix.partition(".")
    tasks = [task for task in leaderboard["tasks"] if task["benchmark"] == benchmark]
    if not name:
        return tasks
    if any(c["benchmark"] == benchmark and c["category"] == name for c in leaderboard["categories"]):
        return [task for task in tasks if task["category"] == name]
    return [task for task in tasks if task["task"] == name]


def _known_metric(leaderboard: dict[str, Any], prefix: str, entry: dict, name: str) -> bool:
    """Whether ``name`` is a metric the entry has, though it may have no value: one its tasks report
    (valued or not judged) or, when a task under it had no item scored (so the leaderboard cannot
    say which metrics it has), one any entry of the leaderboard reports (any name when none reports
    one: every item errored). Anything else is a misspelt path."""
    tasks = _tasks_under(leaderboard, prefix)
    if name in _names(entry) or any(name in _names(task) for task in tasks):
        return True
    if not any(task["errors"] >= task["n"] for task in tasks):
        return False
    sections = (leaderboard["tasks"], leaderboard["categories"], leaderboard["benchmarks"])
    vocabulary = {metric for section in sections for other in section for metric in _names(other)}
    return not vocabulary or name in vocabulary


def resolve(leaderboard: dict[str, Any], path: str) -> float | None:
    """A gate path's value; None for a metric the entry has but could not compute (no item scored
    on it, or not judged). Raises GateError for a path that names nothing."""
    prefix, _, name = path.rpartition(".")
    entry = _entries(leaderboard).get(prefix)
    if entry is not None and name in COUNTS:
        return float(entry[name])
    if entry is not None and name in entry["metrics"]:
        return float(entry["metrics"][name]["value"])
    if entry is not None and _known_metric(leaderboard, prefix, entry, name):
        return None
    raise unknown_path(path, valid_paths(leaderboard))


def unknown_path(path: str, candidates: Iterable[str]) -> GateError:
    """The error for a path that names nothing, with the few closest valid paths (not all of them:
    a real run has thousands)."""
    return GateError(f"unknown gate path {path!r}; closest valid paths: {_closest(path, candidates)}")


def _closest(text: str, candidates: Iterable[str], limit: int = 3) -> str:
    from rapidfuzz import fuzz, process

    matches = process.extract(text, list(candidates), scorer=fuzz.ratio, limit=limit)
    return ", ".join(match for match, _, _ in matches)


DATA_BENCHMARKS = ("meds", "medr")  # every entry of these is made by the data


def check_selected(gates: Iterable[Gate], items: Iterable[Any]) -> None:
    """Before any model call: each MedS-/MedR-Bench gate's entry (benchmark, category or task) must be
    one the run's items make; raises GateError naming the closest. Entries of other benchmarks may come
    from ``medbench.record`` in the user's own tests, known only once they run, and the metric itself,
    like them, is checked on the leaderboard."""
    prefixes = set()
    for item in items:
        prefixes |= {item.benchmark, f"{item.benchmark}.{item.category}", f"{item.benchmark}.{item.task}"}
    for gate in gates:
        prefix = gate.path.rpartition(".")[0]
        if prefix.partition(".")[0] in DATA_BENCHMARKS and prefix not in prefixes:
            raise GateError(
                f"unknown gate path {gate.path!r}: the run's data has no entry {prefix!r}; "
                f"closest entries: {_closest(prefix, sorted(prefixes))}"
            )


def check(gates: list[Gate], leaderboard: dict[str, Any]) -> list[GateResult]:
    """Each gate's result (a metric that could not be computed fails its gate, "not computed");
    raises GateError (a usage error) naming every path the leaderboard lacks."""
    results, unknown = [], []
    for gate in gates:
        try:
            results.append(GateResult(gate, resolve(leaderboard, gate.path)))
        except GateError as exc:
            unknown.append(str(exc))
    if unknown:
        raise GateError("; ".join(unknown))
    return results
