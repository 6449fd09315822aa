"""How far a jury's judges agree, per judged metric of a task: percent agreement and chance-corrected
kappa (Cohen's for two judges, Fleiss' for more), with the number of items it rests on.

Each item is one unit; a judge's rating is its verdict (accuracy) or whether its graded value is at
least 0.5 (the other metrics). Items where any judge gave no value are left out.
Both kappas are a few lines of arithmetic, written here: statsmodels, which has them, would bring
pandas, patsy and scipy with it for two closed-form formulas.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

PASS_MARK = 0.5


def fleiss_kappa(table: list[list[int]]) -> float | None:
    """Fleiss' kappa of a units x categories count table (each row sums to the number of raters)."""
    raters = sum(table[0])
    units = len(table)
    agreement = sum((sum(c * c for c in row) - raters) / (raters * (raters - 1)) for row in table) / units
    shares = [sum(row[j] for row in table) / (units * raters) for j in range(len(table[0]))]
    chance = sum(share * share for share in shares)
    return None if chance == 1 else (agreement - chance) / (1 - chance)


def cohen_kappa(first: list[Any], second: list[Any]) -> float | None:
    """Cohen's kappa of two raters' labels for the same units."""
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    counts_first, counts_second = Counter(first), Counter(second)
    chance = sum(counts_first[label] * counts_second[label] for label in counts_first) / (n * n)
    return None if chance == 1 else (observed - chance) / (1 - chance)


def agreement(ballots: list[list[float]]) -> dict[str, Any]:
    """Agreement over items, each a list of the judges' values for one metric."""
    ratings = [[value >= PASS_MARK for value in item] for item in ballots]
    judges = len(ratings[0])
    unanimous = sum(len(set(item)) == 1 for item in ratings) / len(ratings)
    if judges == 2:
        kind, kappa = "cohen", cohen_kappa([item[0] for item in ratings], [item[1] for item in ratings])
    else:
        kind, kappa = "fleiss", fleiss_kappa([[item.count(True), item.count(False)] for item in ratings])
    return {
        "n": len(ratings),
        "judges": judges,
        "percent_agreement": round(100 * unanimous, 2),
        "kappa": None if kappa is None else round(kappa, 4),
        "kappa_kind": kind,
    }


def judge_agreement(records: list[Any]) -> dict[str, dict[str, Any]]:
    """Per judged metric, the agreement of the jury over the task's scored items ({} without a jury)."""
    by_metric: dict[str, list[list[float]]] = {}
    for record in records:
        for metric, values in record.parsed.get("jury", {}).items():
            if values and all(value is not None for value in values):
                by_metric.setdefault(metric, []).append(values)
    return {metric: agreement(items) for metric, items in sorted(by_metric.items())}
