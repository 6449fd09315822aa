"""Item records -> task, category and benchmark entries with 95% confidence intervals.

Every level is computed from items: a task is one stratum, a category pools its averaged tasks'
items stratified by task (each task weighted as the category's unweighted mean weights it), a
benchmark its categories' in the same way, so a one-task category has exactly its task's value and
interval. The interval per kind of metric (Wilson, t, bootstrap) is in ``report.stats``.
Errored items (no answer from the model, broken data) have no score: they count in ``n`` and
``errors`` but not in the metrics. An empty answer is an answer: scored by the mode's rules, and
counted in ``empty_answers``; ``unscorable`` counts items the released scorer could not score (0).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

from ..data.meds_tasks import averaged_tasks
from . import stats
from .agreement import judge_agreement
from .records import ItemRecord, Usage


def _metric(value: float, low: float, high: float, n: int) -> dict:
    return {"value": round(100 * value, 4), "ci95": [round(100 * low, 4), round(100 * high, 4)], "n": n}


def _strata(records: list[ItemRecord]) -> dict[str, stats.Stratum]:
    """One task's scored items as a stratum per metric."""
    items = [
        {"scores": r.scores, **({"counts": r.counts} if r.counted else {})}
        for r in records
        if r.error is None
    ]
    found = {name: stats.stratum(items, name) for name in stats.metric_names(items)}
    return {name: stratum for name, stratum in found.items() if stratum is not None}


def pooled_metrics(groups: list[list[dict[str, stats.Stratum]]]) -> dict[str, dict]:
    """Metric entries of one level from its groups (categories) of members (tasks), each member a
    stratum per metric: groups count alike, and members within a group alike."""
    names = sorted({name for group in groups for member in group for name in member})
    metrics = {}
    for name in names:
        estimate = stats.interval(stats.weigh([[m[name] for m in group if name in m] for group in groups]))
        metrics[name] = _metric(estimate.value, estimate.low, estimate.high, estimate.n)
    return metrics


def _usage(records: Iterable[ItemRecord]) -> dict:
    records = list(records)
    model = [r.usage for r in records]
    judge = [r.judge_usage for r in records]
    live_calls = _total(model, "calls") - _total(model, "cache_hits")
    latency = _total(model, "latency_s")
    return {
        "tokens": {
            "prompt": _total(model, "prompt_tokens"),
            "completion": _total(model, "completion_tokens"),
        },
        "cost_usd": round(_total(model, "cost_usd"), 6),
        "cache_hits": _total(model, "cache_hits"),
        "reused": _total(model, "reused"),
        "latency_s": round(latency / live_calls, 4) if live_calls else None,
        "judge_tokens": {
            "prompt": _total(judge, "prompt_tokens"),
            "completion": _total(judge, "completion_tokens"),
        },
        "judge_cost_usd": round(_total(judge, "cost_usd"), 6),
    }


def _total(usages: list[Usage], name: str) -> Any:
    """``sum`` of one field over the usages, in their order (so the same float), with no generator
    per field: the usage of a task of 15,000 items took 59 ms with one generator a field, 12 ms so."""
    return sum(map(attrgetter(name), usages))


def _subgroups(records: list[ItemRecord]) -> dict[str, dict]:
    """MedR-Bench breakdowns: rare vs common cases, and each body system."""
    groups: dict[str, list[ItemRecord]] = defaultdict(list)
    for record in records:
        groups["rare" if record.tags.get("rare") else "common"].append(record)
        for system in record.tags.get("body_systems", ()):
            groups[f"body:{system}"].append(record)
    result = {}
    for name in sorted(groups):
        members = groups[name]
        scored = [r for r in members if r.error is None]
        errors = len(members) - len(scored)
        passed = sum(r.passed for r in members)
        result[name] = {
            **_counts(len(members), passed, errors),
            "metrics": pooled_metrics([[_strata(scored)]]),
        }
    return result


def _counts(n: int, passed: int, errors: int) -> dict:
    return {"n": n, "passed": passed, "errors": errors, "pass_rate": round(100 * passed / n, 4) if n else 0.0}


def _answered_empty(record: ItemRecord) -> bool:
    """The model answered nothing but whitespace (in any epoch): scored, and counted apart. A test of
    your own that asked no model (output None) has no answer to count."""
    if record.output is None and not record.epoch_outputs:
        return False
    return any(not (output or "").strip() for output in record.epoch_outputs or [record.output])


def task_entry(records: list[ItemRecord]) -> dict:
    first = records[0]
    scored = [record for record in records if record.error is None]
    kinds = {record.aggregation for record in scored}
    if len(kinds) > 1:
        raise ValueError(f"task {first.task} mixes aggregations {sorted(kinds)}")
    metrics = pooled_metrics([[_strata(scored)]])
    passed = sum(record.passed for record in records)
    errors = len(records) - len(scored)
    entry = {
        "benchmark": first.benchmark,
        "task": first.task,
        "category": first.category,
        **_counts(len(records), passed, errors),
        "empty_answers": sum(map(_answered_empty, scored)),
        "unscorable": sum(record.unscorable for record in scored),
        "metrics": metrics,
        **_usage(records),
    }
    # metrics no item could be scored on (no judge model for the reasoning metrics): not judged, not zero
    # (an item score that a corpus metric stands in for, like HoC's exact_match beside its F1, is not one)
    named = {name for r in scored for name in r.scores}
    valued = {name for r in scored for name, value in r.scores.items() if value is not None}
    not_judged = sorted(named - valued - set(metrics))
    if not_judged:
        entry["not_judged"] = not_judged
    entry["truncated"] = sum(record.truncated for record in records)  # answers cut at the token limit
    if first.benchmark == "medr" and scored:
        entry["subgroups"] = _subgroups(records)
        if agreement := judge_agreement(scored):  # a jury judged this task
            entry["judge_agreement"] = agreement
    return entry


def combine(entries: list[dict], metrics: dict[str, dict], **identity: str) -> dict:
    """A category (or benchmark) entry from its members: counts summed, ``metrics`` pooled from items."""
    live = [e for e in entries if e["latency_s"] is not None]
    return {
        **identity,
        **_counts(
            sum(e["n"] for e in entries), sum(e["passed"] for e in entries), sum(e["errors"] for e in entries)
        ),
        "metrics": metrics,
        "tokens": {k: sum(e["tokens"][k] for e in entries) for k in ("prompt", "completion")},
        "cost_usd": round(sum(e["cost_usd"] for e in entries), 6),
        "cache_hits": sum(e["cache_hits"] for e in entries),
        "reused": sum(e["reused"] for e in entries),
        "latency_s": round(sum(e["latency_s"] for e in live) / len(live), 4) if live else None,
        "judge_tokens": {k: sum(e["judge_tokens"][k] for e in entries) for k in ("prompt", "completion")},
        "judge_cost_usd": round(sum(e["judge_cost_usd"] for e in entries), 6),
    }


def aggregate(records: Iterable[ItemRecord]) -> dict[str, list[dict]]:
    """{"tasks": [...], "categories": [...], "benchmarks": [...]}, each sorted for stable output."""
    by_task: dict[tuple[str, str], list[ItemRecord]] = defaultdict(list)
    for record in records:
        by_task[(record.benchmark, record.task)].append(record)
    for members in by_task.values():  # one order for every level: a corpus metric's seeded
        members.sort(key=lambda r: r.id)  # bootstrap depends on it (a one-task category = its task)
    tasks = [task_entry(by_task[key]) for key in sorted(by_task)]
    by_category: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for entry in tasks:
        by_category[(entry["benchmark"], entry["category"])].append(entry)
    categories = []
    averaged: dict[str, list[list[dict[str, stats.Stratum]]]] = defaultdict(list)  # benchmark -> groups
    for (benchmark, category), members in sorted(by_category.items()):
        included = averaged_tasks(benchmark, category, [entry["task"] for entry in members])
        group = [_strata(by_task[(benchmark, task)]) for task in sorted(included)]
        averaged[benchmark].append(group)
        metrics = pooled_metrics([group])
        categories.append(combine(members, metrics, benchmark=benchmark, category=category))
    by_benchmark: dict[str, list[dict]] = defaultdict(list)
    for entry in categories:
        by_benchmark[entry["benchmark"]].append(entry)
    benchmarks = [
        combine(members, pooled_metrics(averaged[name]), benchmark=name)
        for name, members in sorted(by_benchmark.items())
    ]
    return {"tasks": tasks, "categories": categories, "benchmarks": benchmarks}
