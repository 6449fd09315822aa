"""Item records -> task, category and benchmark entries with 95% confidence intervals.

How each interval is computed (values on the papers' percent scale):
- accuracy and other 0/1 item scores: Wilson score interval (well-behaved at 0% and 100%);
- means of graded item scores (BLEU-1, ROUGE-L, MedR reasoning scores): mean +- 1.96 sd/sqrt(n);
- corpus metrics (NER micro-F1, HoC macro P/R/F1): percentile bootstrap over items, 1000
  resamples, fixed seed, so the same records always give the same interval;
- categories and benchmarks: the unweighted mean of their tasks' (categories') values, as the papers
  average, with the members' standard errors combined as independent: sqrt(sum se^2) / k.
Errored items (no answer from the model, broken data) have no score: they count in ``n`` and
``errors`` but not in the metrics. An empty answer is an answer: scored by the mode's rules, and
counted in ``empty_answers``; ``unscorable`` counts items the released scorer could not score (0).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable

from ..data.meds_tasks import averaged_tasks
from ..metrics.sets import f1_from_counts as _prf
from .agreement import judge_agreement
from .records import ItemRecord

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 1000
PROPORTIONS = frozenset({"accuracy"})  # 0/1 per item (a single epoch): Wilson interval


def wilson(successes: float, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def z_interval(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return (mean, mean)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = Z95 * sd / math.sqrt(n)
    return (max(0.0, mean - half), min(1.0, mean + half))


def _metric(value: float, low: float, high: float, n: int) -> dict:
    return {"value": round(100 * value, 4), "ci95": [round(100 * low, 4), round(100 * high, 4)], "n": n}


def _mean_metrics(records: list[ItemRecord]) -> dict[str, dict]:
    names = sorted({name for record in records for name in record.scores})
    metrics: dict[str, dict] = {}
    for name in names:
        values = [v for record in records if (v := record.scores.get(name)) is not None]
        if not values:
            continue
        mean = sum(values) / len(values)
        proportion = name in PROPORTIONS and all(v in (0.0, 1.0) for v in values)
        low, high = wilson(sum(values), len(values)) if proportion else z_interval(values)
        metrics[name] = _metric(mean, low, high, len(values))
    return metrics


def micro_prf(counts: list[dict[str, float]]) -> dict[str, float]:
    tp, fp, fn = (sum(c.get(k, 0.0) for c in counts) for k in ("tp", "fp", "fn"))
    precision, recall, f1 = _prf(tp, fp, fn)
    return {"precision": precision, "recall": recall, "f1": f1}


def macro_prf(counts: list[dict[str, float]]) -> dict[str, float]:
    """Per-label P/R/F1 from summed counts, then their unweighted mean (sklearn average='macro')."""
    totals: dict[str, float] = defaultdict(float)
    for item in counts:
        for key, value in item.items():
            totals[key] += value
    labels = sorted({key.rsplit("|", 1)[0] for key in totals})
    if not labels:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    per_label = [_prf(totals[f"{x}|tp"], totals[f"{x}|fp"], totals[f"{x}|fn"]) for x in labels]
    return {
        name: sum(p[i] for p in per_label) / len(labels)
        for i, name in enumerate(("precision", "recall", "f1"))
    }


CORPUS_METRICS: dict[str, Callable[[list[dict[str, float]]], dict[str, float]]] = {
    "micro_f1": micro_prf,
    "macro_f1": macro_prf,
}


def _corpus_metrics(records: list[ItemRecord], compute: Callable) -> dict[str, dict]:
    import numpy as np

    counts = [record.counts for record in records]
    point = compute(counts)
    rng = np.random.default_rng(0)
    draws: dict[str, list[float]] = defaultdict(list)
    for _ in range(BOOTSTRAP_RESAMPLES):
        sample = [counts[i] for i in rng.integers(0, len(counts), len(counts))]
        for name, value in compute(sample).items():
            draws[name].append(value)
    return {
        name: _metric(value, *np.percentile(draws[name], [2.5, 97.5]).tolist(), len(records))
        for name, value in point.items()
    }


def _usage(records: Iterable[ItemRecord]) -> dict:
    records = list(records)
    judge = [r.judge_usage for r in records]
    live_calls = sum(r.usage.calls - r.usage.cache_hits for r in records)
    latency = sum(r.usage.latency_s for r in records)
    return {
        "tokens": {
            "prompt": sum(r.usage.prompt_tokens for r in records),
            "completion": sum(r.usage.completion_tokens for r in records),
        },
        "cost_usd": round(sum(r.usage.cost_usd for r in records), 6),
        "cache_hits": sum(r.usage.cache_hits for r in records),
        "latency_s": round(latency / live_calls, 4) if live_calls else None,
        "judge_tokens": {
            "prompt": sum(u.prompt_tokens for u in judge),
            "completion": sum(u.completion_tokens for u in judge),
        },
        "judge_cost_usd": round(sum(u.cost_usd for u in judge), 6),
    }


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
            "metrics": _mean_metrics(scored) if scored else {},
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
    if not scored:
        metrics: dict[str, dict] = {}
    elif kinds == {"mean"}:
        metrics = _mean_metrics(scored)
    else:
        metrics = _corpus_metrics(scored, CORPUS_METRICS[kinds.pop()])
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
    not_judged = sorted({name for r in scored for name in r.scores} - set(metrics))
    if not_judged:
        entry["not_judged"] = not_judged
    entry["truncated"] = sum(record.truncated for record in records)  # answers cut at the token limit
    if first.benchmark == "medr" and scored:
        entry["subgroups"] = _subgroups(records)
        if agreement := judge_agreement(scored):  # a jury judged this task
            entry["judge_agreement"] = agreement
    return entry


def combine(entries: list[dict], averaged: list[dict] | None = None, **identity: str) -> dict:
    """A category (or benchmark) entry from its members: counts summed, each metric the unweighted
    mean over ``averaged`` (default: all members)."""
    averaged = entries if averaged is None else averaged
    names = sorted({name for entry in averaged for name in entry["metrics"]})
    metrics = {}
    for name in names:
        members = [entry["metrics"][name] for entry in averaged if name in entry["metrics"]]
        value = sum(m["value"] for m in members) / len(members)
        se = math.sqrt(sum(((m["ci95"][1] - m["ci95"][0]) / (2 * Z95)) ** 2 for m in members)) / len(members)
        low, high = max(0.0, value - Z95 * se), min(100.0, value + Z95 * se)
        metrics[name] = {
            "value": round(value, 4),
            "ci95": [round(low, 4), round(high, 4)],
            "n": sum(m["n"] for m in members),
        }
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
        "latency_s": round(sum(e["latency_s"] for e in live) / len(live), 4) if live else None,
        "judge_tokens": {k: sum(e["judge_tokens"][k] for e in entries) for k in ("prompt", "completion")},
        "judge_cost_usd": round(sum(e["judge_cost_usd"] for e in entries), 6),
    }


def aggregate(records: Iterable[ItemRecord]) -> dict[str, list[dict]]:
    """{"tasks": [...], "categories": [...], "benchmarks": [...]}, each sorted for stable output."""
    by_task: dict[tuple[str, str], list[ItemRecord]] = defaultdict(list)
    for record in records:
        by_task[(record.benchmark, record.task)].append(record)
    tasks = [task_entry(sorted(by_task[key], key=lambda r: r.id)) for key in sorted(by_task)]
    by_category: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for entry in tasks:
        by_category[(entry["benchmark"], entry["category"])].append(entry)
    categories = []
    for (benchmark, category), members in sorted(by_category.items()):
        included = averaged_tasks(benchmark, category, [entry["task"] for entry in members])
        averaged = [entry for entry in members if entry["task"] in included]
        categories.append(combine(members, averaged, benchmark=benchmark, category=category))
    by_benchmark: dict[str, list[dict]] = defaultdict(list)
    for entry in categories:
        by_benchmark[entry["benchmark"]].append(entry)
    benchmarks = [combine(members, benchmark=b) for b, members in sorted(by_benchmark.items())]
    return {"tasks": tasks, "categories": categories, "benchmarks": benchmarks}
