"""Paired comparison of two runs on the items both scored: has a metric dropped, significantly?

- Task accuracy (0/1 per item): McNemar's exact test on the discordant pairs. Both runs answered the
  same items, so the pairs are what carries the information; McNemar is exact at any sample size
  and ignores the items both runs got right (or wrong), which say nothing about a change.
- Everything else (graded means such as ROUGE-L, corpus metrics such as NER micro-F1 and HoC macro
  F1, and category averages): a paired bootstrap over the shared items (1,000 resamples, fixed
  seed), recomputing the metric on both runs for each resample; the p-value is two-sided.
The delta's 95% interval is the bootstrap percentile interval in every case.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..data.meds_tasks import averaged_tasks
from ..metrics.sets import f1_from_counts as _prf

RESAMPLES = 1000
SUPPORTED_MAJOR = "1"


class CompareError(ValueError):
    """Two leaderboards that cannot be compared item by item (a usage error)."""


@dataclass(frozen=True)
class Comparison:
    benchmark: str
    scope: str  # "task" or "category"
    name: str
    metric: str
    old: float  # percent, on the shared items
    new: float
    n_shared: int
    delta: float
    ci95: tuple[float, float]
    p_value: float
    test: str  # "mcnemar" or "paired bootstrap"

    def regressed(self, max_drop: float, alpha: float) -> bool:
        return self.delta < -max_drop and self.p_value < alpha

    @property
    def label(self) -> str:
        return f"{self.benchmark}.{self.name}.{self.metric}"


def check_comparable(baseline: dict[str, Any]) -> None:
    version = str(baseline.get("schema_version", "?"))
    if version.split(".")[0] != SUPPORTED_MAJOR:
        raise CompareError(f"baseline schema version {version} is not supported (this plugin reads 1.x)")
    if "items" not in baseline:
        raise CompareError(
            f"baseline (schema {version}) has no per-item scores, so a drop cannot be tested for "
            "significance; rerun the baseline with this version of pytest-medbench"
        )


# -- one metric of one task as item components and a reducer ------------------------------------


def _reducer(metric: str, items: list[dict]) -> tuple[Callable[[dict], list[float]], Callable[[Any], float]]:
    """(item -> component row, column totals -> metric on a 0-1 scale) for one task's metric."""
    counts = items[0].get("counts") or {}
    if metric in ("precision", "recall", "f1") and counts:
        keys = sorted(counts)
        position = ("precision", "recall", "f1").index(metric)
        if any("|" in key for key in keys):  # macro over labels
            labels = sorted({key.rsplit("|", 1)[0] for key in keys})

            def macro(totals: Any) -> float:
                values = [
                    _prf(*(totals[keys.index(f"{label}|{k}")] for k in ("tp", "fp", "fn")))
                    for label in labels
                ]
                return sum(v[position] for v in values) / len(values) if values else 0.0

            return (lambda item: [item.get("counts", {}).get(k, 0.0) for k in keys]), macro
        return (lambda item: [item.get("counts", {}).get(k, 0.0) for k in ("tp", "fp", "fn")]), (
            lambda totals: _prf(*totals)[position]
        )
    return (lambda item: [item["scores"][metric]]), (lambda totals: totals[0])


@dataclass
class _Paired:
    old: Any  # numpy array, items x components
    new: Any
    reduce: Callable[[Any], float]
    mean: bool  # True: the reducer takes column means, else column sums

    def value(self, rows: Any, which: str) -> float:
        matrix = self.old if which == "old" else self.new
        picked = matrix[rows]
        return self.reduce(picked.mean(axis=0) if self.mean else picked.sum(axis=0))


def _paired(metric: str, old_items: dict[str, dict], new_items: dict[str, dict]) -> _Paired | None:
    import numpy as np

    shared = sorted(
        key
        for key in old_items.keys() & new_items.keys()
        if not old_items[key].get("error") and not new_items[key].get("error")
    )
    has = [k for k in shared if _has(old_items[k], metric) and _has(new_items[k], metric)]
    if not has:
        return None
    row, reduce = _reducer(metric, [old_items[has[0]]])
    old = np.array([row(old_items[k]) for k in has], dtype=float)
    new = np.array([row(new_items[k]) for k in has], dtype=float)
    return _Paired(
        old,
        new,
        reduce,
        mean=not old_items[has[0]].get("counts") or metric not in ("precision", "recall", "f1"),
    )


def _has(item: dict, metric: str) -> bool:
    return item["scores"].get(metric) is not None or (
        metric in ("precision", "recall", "f1") and bool(item.get("counts"))
    )


def _mcnemar(old: Any, new: Any) -> float:
    """Two-sided exact McNemar p-value from paired 0/1 outcomes."""
    worse = int(((old == 1) & (new == 0)).sum())
    better = int(((old == 0) & (new == 1)).sum())
    discordant = worse + better
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(worse, better) + 1)) / 2**discordant
    return min(1.0, 2 * tail)


def _group_comparison(pairs: list[_Paired]) -> tuple[float, float, tuple[float, float], float]:
    """(old, new, delta CI, bootstrap p) for the unweighted mean of the tasks' metric values."""
    import numpy as np

    def mean_value(rows: list[Any], which: str) -> float:
        return sum(pair.value(r, which) for pair, r in zip(pairs, rows, strict=True)) / len(pairs)

    full = [np.arange(len(pair.old)) for pair in pairs]
    old, new = mean_value(full, "old"), mean_value(full, "new")
    rng = np.random.default_rng(0)
    deltas = []
    for _ in range(RESAMPLES):
        rows = [rng.integers(0, len(pair.old), len(pair.old)) for pair in pairs]
        deltas.append(mean_value(rows, "new") - mean_value(rows, "old"))
    deltas_array = np.array(deltas)
    low, high = np.percentile(deltas_array, [2.5, 97.5]).tolist()
    if np.allclose(deltas_array, 0):
        p = 1.0
    else:
        p = float(min(1.0, 2 * min((deltas_array <= 0).mean(), (deltas_array >= 0).mean())))
    return old, new, (low, high), p


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> list[Comparison]:
    """Every task and category metric both runs report, compared on their shared items."""
    check_comparable(baseline)
    check_comparable(current)
    results: list[Comparison] = []
    by_category: dict[tuple[str, str, str], list[tuple[str, _Paired]]] = defaultdict(list)
    old_tasks = {(t["benchmark"], t["task"]): t for t in baseline["tasks"]}
    for task in current["tasks"]:
        key = (task["benchmark"], task["task"])
        if key not in old_tasks:
            continue
        old_items = baseline["items"].get(f"{key[0]}/{key[1]}", {})
        new_items = current["items"].get(f"{key[0]}/{key[1]}", {})
        for metric in sorted(set(task["metrics"]) & set(old_tasks[key]["metrics"])):
            pair = _paired(metric, old_items, new_items)
            if pair is None:
                continue
            by_category[(task["benchmark"], task["category"], metric)].append((task["task"], pair))
            old, new, ci, p = _group_comparison([pair])
            test = "paired bootstrap"
            if metric == "accuracy" and pair.mean:
                p, test = _mcnemar(pair.old[:, 0], pair.new[:, 0]), "mcnemar"
            results.append(
                _comparison(
                    task["benchmark"], "task", task["task"], metric, old, new, len(pair.old), ci, p, test
                )
            )
    for (benchmark, category, metric), members in sorted(by_category.items()):
        included = averaged_tasks(benchmark, category, [name for name, _ in members])
        members = [member for member in members if member[0] in included]
        pairs = [pair for _, pair in members]
        old, new, ci, p = _group_comparison(pairs)
        n = sum(len(pair.old) for pair in pairs)
        results.append(
            _comparison(benchmark, "category", category, metric, old, new, n, ci, p, "paired bootstrap")
        )
    return results


def _comparison(
    benchmark: str,
    scope: str,
    name: str,
    metric: str,
    old: float,
    new: float,
    n: int,
    ci: tuple[float, float],
    p: float,
    test: str,
) -> Comparison:
    return Comparison(
        benchmark,
        scope,
        name,
        metric,
        round(100 * old, 4),
        round(100 * new, 4),
        n,
        round(100 * (new - old), 4),
        (round(100 * ci[0], 4), round(100 * ci[1], 4)),
        round(p, 6),
        test,
    )


def table(comparisons: list[Comparison], max_drop: float, alpha: float) -> list[str]:
    """Plain-text rows: what, both values, delta, CI, p, and a mark on each significant drop."""
    rows = [("", "baseline", "current", "delta", "95% CI", "p", "test", "n")]
    for c in comparisons:
        mark = "  REGRESSED" if c.regressed(max_drop, alpha) else ""
        rows.append(
            (
                c.label + ("" if c.scope == "task" else " (category)"),
                f"{c.old:.2f}",
                f"{c.new:.2f}",
                f"{c.delta:+.2f}",
                f"[{c.ci95[0]:+.2f}, {c.ci95[1]:+.2f}]",
                f"{c.p_value:.4f}",
                c.test,
                f"{c.n_shared}{mark}",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
