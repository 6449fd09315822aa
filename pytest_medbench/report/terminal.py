"""The end-of-run summary table: one row per category, its tasks indented beneath it."""

from __future__ import annotations

from typing import Any

from .audit import audit_note


def _metrics(entry: dict[str, Any]) -> str:
    parts = []
    for name, metric in entry["metrics"].items():
        low, high = metric["ci95"]
        parts.append(f"{name} {metric['value']:.1f} [{low:.1f}, {high:.1f}]")
    return "; ".join(parts) or "-"


def summary_lines(leaderboard: dict[str, Any]) -> list[str]:
    rows = [("", "n", "pass", "err", "metrics (95% CI)")]
    for category in leaderboard["categories"]:
        label = f"{category['benchmark']}.{category['category']}"
        rows.append((label, category["n"], category["passed"], category["errors"], _metrics(category)))
        for task in leaderboard["tasks"]:
            if (task["benchmark"], task["category"]) == (category["benchmark"], category["category"]):
                metrics = "; ".join(part for part in (_metrics(task), audit_note(task.get("audit"))) if part)
                rows.append((f"  {task['task']}", task["n"], task["passed"], task["errors"], metrics))
    for benchmark in leaderboard["benchmarks"]:
        rows.append(
            (
                f"{benchmark['benchmark']} (all)",
                benchmark["n"],
                benchmark["passed"],
                benchmark["errors"],
                _metrics(benchmark),
            )
        )
    width = max(len(str(row[0])) for row in rows)
    return [f"{row[0]:<{width}}  {row[1]!s:>5}  {row[2]!s:>5}  {row[3]!s:>4}  {row[4]}" for row in rows]
