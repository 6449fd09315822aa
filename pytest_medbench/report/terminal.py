"""The end-of-run summary table, compact enough for one screen with the full benchmarks: a row per
category (and per MedR-Bench setting, its reported unit), the benchmarks' pooled rows, the tasks with
the lowest pass rates and the flagged ones. ``-v`` adds every task's row; the leaderboard JSON and
the HTML page always hold them."""

from __future__ import annotations

import re
from typing import Any

from .audit import audit_note

LOWEST_SHOWN = 3  # tasks named on the "lowest pass rates" line
FLAGGED_SHOWN = 6  # tasks named on the "flagged" line before "and N more"
SHOWN_WITH_F1 = ("precision", "recall")  # beside F1 they lengthen a row without changing its reading


def natural_key(text: str) -> list:
    """task1 < task16 < task100: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _metrics(entry: dict[str, Any], every: bool) -> str:
    metrics = entry["metrics"]
    parts = []
    for name, metric in metrics.items():
        if not every and name in SHOWN_WITH_F1 and "f1" in metrics:
            continue
        low, high = metric["ci95"]
        parts.append(f"{name} {metric['value']:.1f} [{low:.1f}, {high:.1f}]")
    return "; ".join(parts) or "-"


def _row(label: str, entry: dict[str, Any], every: bool) -> tuple:
    metrics = "; ".join(part for part in (_metrics(entry, every), audit_note(entry.get("audit"))) if part)
    return (label, entry["n"], entry["passed"], entry["errors"], metrics)


def _ordered(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(tasks, key=lambda task: (task["benchmark"], natural_key(task["task"])))


def _flags(task: dict[str, Any]) -> list[str]:
    """What makes a task's score suspect: errors, a degenerate gold set, cut or unscorable answers."""
    flags = [f"{task['errors']} error{'s' * (task['errors'] > 1)}"] if task["errors"] else []
    if "degenerate" in (task.get("audit") or {}).get("flags", ()):
        flags.append("degenerate: every gold is one label")
    flags += [f"{task[key]} {key}" for key in ("truncated", "unscorable") if task.get(key)]
    return flags


def summary_lines(leaderboard: dict[str, Any], per_task: bool = False) -> list[str]:
    """The summary's lines; ``per_task`` (``-v``) adds a row for every task, with every metric."""
    tasks = _ordered(leaderboard["tasks"])
    rows = [("", "n", "pass", "err", "metrics (95% CI)")]
    for category in leaderboard["categories"]:
        rows.append(_row(f"{category['benchmark']}.{category['category']}", category, per_task))
        for task in tasks:
            if (task["benchmark"], task["category"]) != (category["benchmark"], category["category"]):
                continue
            if per_task or task["benchmark"] == "medr":
                rows.append(_row(f"  {task['task']}", task, per_task))
    for benchmark in leaderboard["benchmarks"]:
        rows.append(_row(f"{benchmark['benchmark']} (all)", benchmark, per_task))
    width = max(len(str(row[0])) for row in rows)
    lines = [f"{row[0]:<{width}}  {row[1]!s:>5}  {row[2]!s:>5}  {row[3]!s:>4}  {row[4]}" for row in rows]
    if per_task:
        return lines
    unshown = [task for task in tasks if task["benchmark"] != "medr" and task["n"]]
    if len(unshown) > 1:
        lowest = sorted(unshown, key=lambda task: task["pass_rate"])[:LOWEST_SHOWN]
        named = ", ".join(f"{task['task']} {task['passed']}/{task['n']}" for task in lowest)
        lines.append(f"lowest pass rates: {named} (every task: -v, the leaderboard or the HTML page)")
    flagged = [f"{task['task']} ({', '.join(flags)})" for task in tasks if (flags := _flags(task))]
    if flagged:
        more = f" and {len(flagged) - FLAGGED_SHOWN} more" if len(flagged) > FLAGGED_SHOWN else ""
        lines.append(f"flagged: {'; '.join(flagged[:FLAGGED_SHOWN])}{more}")
    return lines
