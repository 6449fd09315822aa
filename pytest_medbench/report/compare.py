"""Paired comparison of two runs on the items both scored: has a metric dropped, significantly?

Every task, category and benchmark metric both runs report is compared by ``report.stats`` on the
shared items, a category or benchmark pooling its tasks' items stratified by task and weighted as
its value is (the method per kind of metric is in that module and docs/ci.md). The p-values of each
level are adjusted together (Benjamini-Hochberg), and a metric regressed when it dropped by
more than the allowed points with an adjusted p below alpha: the same rule for ``medbench compare``
and an in-run ``--medbench-baseline``.

A comparison passes only on what it compared: a metric the baseline has on a task both runs have
that could not be compared (this run scored none of the task's items, none that the baseline scored
too, or could not compute the metric) is listed as not compared and fails the comparison, and so
does a comparison of nothing at all.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data.meds_tasks import averaged_tasks
from . import stats

SUPPORTED_MAJOR = "1"
LEADERBOARD_KEYS = frozenset({"tasks", "categories", "benchmarks"})
SHOWN_NOT_COMPARED = 3  # metric paths named per reason on the verdict line before "and N more"


class CompareError(ValueError):
    """Two leaderboards that cannot be compared item by item (a usage error)."""


def read_leaderboard(path: str | Path, role: str = "") -> dict[str, Any]:
    """A leaderboard file, for ``medbench`` and an in-run ``--medbench-baseline`` alike; raises
    CompareError naming the file (``role``, e.g. "the baseline ", prefixes its name) when it cannot
    be read or is not a leaderboard."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CompareError(f"cannot read {role}{path}: {exc}") from exc
    if not isinstance(data, dict) or not data.keys() >= LEADERBOARD_KEYS:
        raise CompareError(f"{role}{path} is not a pytest-medbench leaderboard")
    return data


@dataclass(frozen=True)
class Comparison:
    benchmark: str
    scope: str  # "task", "category" or "benchmark"
    name: str
    metric: str
    old: float  # percent, on the shared items
    new: float
    n_shared: int
    delta: float
    ci95: tuple[float, float]
    p_value: float
    test: str  # "mcnemar exact", "sign-flip exact" or "sign-flip" (Monte Carlo)
    p_adjusted: float = 1.0  # Benjamini-Hochberg over the comparisons of the same scope
    detectable_drop: float | None = None  # points; None: no drop is detectable on these items

    def regressed(self, max_drop: float, alpha: float) -> bool:
        return self.delta < -max_drop and self.p_adjusted < alpha

    def verdict(self, max_drop: float, alpha: float) -> str:
        if self.regressed(max_drop, alpha):
            return "regressed"
        if self.detectable_drop is None:
            return f"cannot detect any drop on {self.n_shared} items"
        if self.detectable_drop > max_drop:
            return f"cannot detect a drop under {self.detectable_drop:.1f} points"
        return "no regression"

    @property
    def label(self) -> str:
        return self.benchmark if self.scope == "benchmark" else f"{self.benchmark}.{self.name}"

    @property
    def path(self) -> str:
        return f"{self.label}.{self.metric}"


@dataclass(frozen=True)
class NotCompared:
    """A task metric of the baseline, on a task this run has too, that could not be compared."""

    path: str  # "meds.task123.accuracy"
    reason: str  # NO_SCORED_ITEM, NO_SHARED_ITEM or NOT_COMPUTED


NO_SCORED_ITEM = "this run scored none of the task's items"
NO_SHARED_ITEM = "no item scored by both runs"
NOT_COMPUTED = "not computed in this run"


def check_comparable(baseline: dict[str, Any]) -> None:
    version = str(baseline.get("schema_version", "?"))
    if version.split(".")[0] != SUPPORTED_MAJOR:
        raise CompareError(f"baseline schema version {version} is not supported (this plugin reads 1.x)")
    if "items" not in baseline:
        raise CompareError(
            f"baseline (schema {version}) has no per-item scores, so a drop cannot be tested for "
            "significance; rerun the baseline with this version of pytest-medbench"
        )


Pair = tuple[stats.Stratum, stats.Stratum]


def _task_pairs(
    baseline: dict[str, Any], current: dict[str, Any]
) -> tuple[dict[tuple[str, str, str], dict], list[NotCompared]]:
    """(benchmark, category, task) -> {metric: (old stratum, new stratum)} on the shared scored items,
    and the baseline's metrics of the shared tasks that could not be paired so."""
    old_tasks = {(t["benchmark"], t["task"]): t for t in baseline["tasks"]}
    result: dict[tuple[str, str, str], dict] = {}
    not_compared: list[NotCompared] = []
    for task in current["tasks"]:
        key = (task["benchmark"], task["task"])
        if key not in old_tasks:
            continue
        old_items = baseline["items"].get(f"{key[0]}/{key[1]}", {})
        new_items = current["items"].get(f"{key[0]}/{key[1]}", {})
        shared = sorted(
            k
            for k in old_items.keys() & new_items.keys()
            if not old_items[k].get("error") and not new_items[k].get("error")
        )
        olds, news = [old_items[k] for k in shared], [new_items[k] for k in shared]
        metrics = {}
        for metric in sorted(old_tasks[key]["metrics"]):
            pair = None
            if metric in task["metrics"]:
                try:
                    pair = stats.paired_strata(olds, news, metric)
                except ValueError as exc:
                    raise CompareError(f"{key[0]}.{key[1]}: {exc}; the runs were scored differently") from exc
            if pair is not None:
                metrics[metric] = pair
                continue
            if task["errors"] >= task["n"]:
                reason = NO_SCORED_ITEM
            elif metric not in task["metrics"]:
                reason = NOT_COMPUTED
            else:
                reason = NO_SHARED_ITEM
            not_compared.append(NotCompared(f"{key[0]}.{key[1]}.{metric}", reason))
        result[(task["benchmark"], task["category"], task["task"])] = metrics
    return result, not_compared


def _weighted(groups: list[list[Pair]]) -> list[Pair]:
    """Pairs weighted as the leaderboard averages them (groups alike, members of a group alike)."""
    olds = stats.weigh([[old for old, _ in group] for group in groups])
    news = stats.weigh([[new for _, new in group] for group in groups])
    return list(zip(olds, news, strict=True))


def compare(baseline: dict[str, Any], current: dict[str, Any], alpha: float = 0.05) -> list[Comparison]:
    """Every task, category and benchmark metric both runs report, compared on their shared items."""
    return compare_runs(baseline, current, alpha)[0]


def compare_runs(
    baseline: dict[str, Any], current: dict[str, Any], alpha: float = 0.05
) -> tuple[list[Comparison], list[NotCompared]]:
    """``compare``, and the baseline's task metrics that could not be compared (``shortfall`` says
    how they fail the comparison). Raises CompareError when the runs share no task at all."""
    check_comparable(baseline)
    check_comparable(current)
    tasks, not_compared = _task_pairs(baseline, current)
    if not tasks:
        raise CompareError(
            "the baseline has none of this run's tasks, so nothing can be compared "
            f"(this run: {_some(_task_names(current))}; the baseline: {_some(_task_names(baseline))})"
        )
    by_category: dict[tuple[str, str], list[str]] = defaultdict(list)
    for benchmark, category, task in tasks:
        by_category[(benchmark, category)].append(task)
    # (benchmark, metric) -> category -> the category's averaged tasks' pairs
    groups: dict[tuple[str, str], dict[str, list[Pair]]] = defaultdict(lambda: defaultdict(list))
    for (benchmark, category), names in sorted(by_category.items()):
        for task in sorted(averaged_tasks(benchmark, category, names)):
            for metric, pair in tasks[(benchmark, category, task)].items():
                groups[(benchmark, metric)][category].append(pair)
    measured: list[tuple[str, str, str, str, list[Pair]]] = []
    for (benchmark, _, task), metrics in sorted(tasks.items()):
        measured += [(benchmark, "task", task, metric, [pair]) for metric, pair in metrics.items()]
    for (benchmark, metric), by_name in sorted(groups.items()):
        measured += [
            (benchmark, "category", category, metric, _weighted([pairs]))
            for category, pairs in sorted(by_name.items())
        ]
        measured.append((benchmark, "benchmark", benchmark, metric, _weighted(list(by_name.values()))))
    comparisons = _adjusted([(*where, stats.change(pairs, alpha)) for *where, pairs in measured])
    return comparisons, not_compared


def _task_names(board: dict[str, Any]) -> list[str]:
    return sorted(f"{t['benchmark']}.{t['task']}" for t in board["tasks"])


def _some(names: list[str], shown: int = SHOWN_NOT_COMPARED) -> str:
    """``a, b, c and 4 more`` (``none`` for no name)."""
    if not names:
        return "none"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def shortfall(comparisons: Sequence[Comparison], not_compared: Sequence[NotCompared]) -> list[str]:
    """Why a comparison that found no regression still fails (empty when it does not): a comparison
    of nothing at all, or baseline metrics it could not compare, named by reason. The one rule for
    ``medbench compare`` and the in-run baseline."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for entry in not_compared:
        by_reason[entry.reason].append(entry.path)
    why = "; ".join(f"{reason}: {_some(paths)}" for reason, paths in by_reason.items())
    if not comparisons:
        return [f"nothing compared with the baseline ({why or 'no metric both runs have'})"]
    if not_compared:
        metrics = f"{len(not_compared)} metric{'s' * (len(not_compared) > 1)}"
        return [f"{metrics} of the baseline not compared ({why})"]
    return []


def _adjusted(changes: list[tuple[str, str, str, str, stats.Change]]) -> list[Comparison]:
    """Comparisons in percent, with Benjamini-Hochberg adjusted p-values within each level (all task
    metrics together, all category metrics, all benchmark metrics): a level's entries summarise
    the same items as the level below, so pooling the levels would count that evidence twice."""
    from scipy.stats import false_discovery_control

    adjusted = [1.0] * len(changes)
    for scope in ("task", "category", "benchmark"):
        at = [i for i, (_, level, *_) in enumerate(changes) if level == scope]
        if at:
            for i, p in zip(at, false_discovery_control([changes[i][4].p_value for i in at]), strict=True):
                adjusted[i] = float(p)
    return [
        Comparison(
            benchmark,
            scope,
            name,
            metric,
            _percent(c.old),
            _percent(c.new),
            c.n,
            _percent(c.delta),
            (_percent(c.low), _percent(c.high)),
            float(f"{c.p_value:.6g}"),  # significant digits: BH may need p far below 1e-6
            c.method,
            float(f"{p_adjusted:.6g}"),
            None if c.detectable_drop is None else _percent(c.detectable_drop),
        )
        for (benchmark, scope, name, metric, c), p_adjusted in zip(changes, adjusted, strict=True)
    ]


def _percent(value: float) -> float:
    return round(100 * value, 4)


def regressions(comparisons: list[Comparison], max_drop: float, alpha: float) -> list[Comparison]:
    """The comparisons that fail a deployment: the one rule for the command and the in-run baseline."""
    return [c for c in comparisons if c.regressed(max_drop, alpha)]


def write_json(
    path: Path,
    comparisons: list[Comparison],
    max_drop: float,
    alpha: float,
    not_compared: Sequence[NotCompared] = (),
) -> None:
    """Per compared metric: both values, the change with its interval, raw and adjusted p,
    ``detectable_drop``, n and the verdict; then the baseline metrics not compared, with why, and
    whether the comparison passed."""
    rows = [
        {
            "metric": c.path,
            "scope": c.scope,
            "baseline": c.old,
            "current": c.new,
            "change": c.delta,
            "change_ci95": list(c.ci95),
            "p_value": c.p_value,
            "p_adjusted": c.p_adjusted,
            "detectable_drop": c.detectable_drop,
            "n": c.n_shared,
            "test": c.test,
            "verdict": c.verdict(max_drop, alpha),
        }
        for c in comparisons
    ]
    regressed = [c.path for c in regressions(comparisons, max_drop, alpha)]
    document = {
        "max_drop": max_drop,
        "alpha": alpha,
        "adjustment": "benjamini-hochberg",
        "passed": not regressed and not shortfall(comparisons, not_compared),
        "regressed": regressed,
        "comparisons": rows,
        "not_compared": [{"metric": entry.path, "reason": entry.reason} for entry in not_compared],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _detectable(c: Comparison) -> str:
    return "none" if c.detectable_drop is None else f"{c.detectable_drop:.1f}"


def table(
    comparisons: list[Comparison],
    max_drop: float,
    alpha: float,
    not_compared: Sequence[NotCompared] = (),
) -> list[str]:
    """Plain-text rows: what, both values, delta with its CI, raw and adjusted p, the smallest
    detectable drop, n, and the verdict; a baseline metric not compared gets a row saying why."""
    rows = [("", "baseline", "current", "delta", "95% CI", "p", "p (BH)", "detectable", "n", "test", "")]
    for c in comparisons:
        verdict = c.verdict(max_drop, alpha)
        rows.append(
            (
                c.path + ("" if c.scope == "task" else f" ({c.scope})"),
                f"{c.old:.2f}",
                f"{c.new:.2f}",
                f"{c.delta:+.2f}",
                f"[{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}]",
                f"{c.p_value:.4f}",
                f"{c.p_adjusted:.4f}",
                _detectable(c),
                str(c.n_shared),
                c.test,
                "REGRESSED" if verdict == "regressed" else verdict,
            )
        )
    for entry in not_compared:
        rows.append((entry.path, *["-"] * 7, "0", "-", f"NOT COMPARED: {entry.reason}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
