"""A self-contained HTML leaderboard: bars with CI whiskers per category for each run, the task table
with deltas, MedR-Bench breakdowns, and a browser of failed items. No network at view time.

The page is the jinja2 template ``templates/leaderboard.html``, rendered with autoescaping: every
piece of model, judge or data text is escaped, so an output containing ``<script>`` is shown as
text, never run. This module only shapes the leaderboards into the values the template shows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from ..models.secrets import mask
from .audit import audit_note
from .terminal import natural_key

PRIMARY = ("accuracy", "f1", "rouge_l", "precision", "recall", "bleu_1", "efficiency")
COLOURS = ("#2f6db5", "#d9822b", "#3a9a5b", "#b0413e", "#7a5ba6", "#5b6770")
FAILED_ITEMS_SHOWN = 500
MIN_BAR = 2.0  # px: the width of a zero bar
BAR_HEIGHT, BAR_STEP, CHART_LEFT, CHART_WIDTH = 12, 15, 230, 760  # px, in the chart's viewBox


@functools.cache
def _template() -> Any:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_medbench.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("leaderboard.html")


def _metric_order(name: str) -> tuple[int, str]:
    return (PRIMARY.index(name) if name in PRIMARY else len(PRIMARY), name)


def _chart(runs: list[tuple[str, dict]]) -> dict[str, Any]:
    """The SVG's geometry: a group per category, a bar per metric and run, whiskers for the 95% CI. A
    zero is drawn as a thin bar, so it reads as zero, not as missing."""
    categories = sorted({(c["benchmark"], c["category"]) for _, board in runs for c in board["categories"]})
    entries = {
        (c["benchmark"], c["category"], index): c
        for index, (_, board) in enumerate(runs)
        for c in board["categories"]
    }
    bars, row = [], 0
    for benchmark, category in categories:
        found = [(i, entries.get((benchmark, category, i))) for i in range(len(runs))]
        metrics = sorted({m for _, entry in found if entry for m in entry["metrics"]}, key=_metric_order)
        label = f"{benchmark}.{category}"  # on a category's first bar only
        for metric in metrics:
            for index, entry in found:
                if entry and metric in entry["metrics"]:
                    bars.append(_bar(label, row * BAR_STEP, metric, entry["metrics"][metric], index))
                    label, row = "", row + 1
        row += 1  # a gap between categories
    height = BAR_STEP * row
    return {
        "view_width": CHART_LEFT + CHART_WIDTH + 170,
        "view_height": height + 30,
        "height": height,
        "left": CHART_LEFT,
        "bar_height": BAR_HEIGHT,
        "value_x": CHART_LEFT + CHART_WIDTH + 6,
        "ticks": [{"x": CHART_LEFT + CHART_WIDTH * tick / 100, "label": tick} for tick in range(0, 101, 20)],
        "bars": bars,
    }


def _bar(label: str, y: int, metric: str, found: dict, run_index: int) -> dict[str, Any]:
    value, (low, high) = found["value"], found["ci95"]
    return {
        "label": label,
        "y": y,
        "mid": y + BAR_HEIGHT / 2,
        "width": f"{max(CHART_WIDTH * value / 100, MIN_BAR):.1f}",
        "colour": COLOURS[run_index % len(COLOURS)],
        "title": f"{metric} {value:.2f} [{low:.2f}, {high:.2f}]",
        "x_low": f"{CHART_LEFT + CHART_WIDTH * low / 100:.1f}",
        "x_high": f"{CHART_LEFT + CHART_WIDTH * high / 100:.1f}",
        "value_label": f"{metric} {value:.1f}",
    }


def _task_rows(runs: list[tuple[str, dict]]) -> list[dict[str, Any]]:
    """A row per task of the first run and metric: each run's value, the last run's change from the
    first, the current run's jury agreement, and the task's truncation and audit marks."""
    by_key = [{(t["benchmark"], t["task"]): t for t in board["tasks"]} for _, board in runs]
    rows = []
    for task in sorted(runs[0][1]["tasks"], key=lambda t: (t["benchmark"], natural_key(t["task"]))):
        key = (task["benchmark"], task["task"])
        for metric in task["metrics"]:
            matches = [tasks.get(key) for tasks in by_key]
            values = [
                m["metrics"][metric]["value"] if m and metric in m["metrics"] else None for m in matches
            ]
            delta = values[-1] - values[0] if None not in (values[0], values[-1]) else None
            rows.append(
                {
                    "benchmark": task["benchmark"],
                    "task": task["task"],
                    "category": task["category"],
                    "truncated": task.get("truncated"),
                    "audit": audit_note(task.get("audit")),
                    "degenerate": "degenerate" in (task.get("audit") or {}).get("flags", ()),
                    "metric": metric,
                    "n": task["n"],
                    "cells": ["" if value is None else f"{value:.2f}" for value in values],
                    "delta": "" if delta is None else f"{delta:+.2f}",
                    "tone": "" if not delta else "neg" if delta < 0 else "pos",
                    "agreement": _agreement(matches[-1], metric),
                }
            )
    return rows


def _agreement(task: dict | None, metric: str) -> str:
    """A jury's agreement on ``metric`` in ``task``: percent agreement, kappa and n (or nothing)."""
    found = (task or {}).get("judge_agreement", {}).get(metric)
    if not found:
        return ""
    kappa = "undefined" if found["kappa"] is None else f"{found['kappa']:.2f}"
    return f"{found['percent_agreement']:.0f}% agree, {found['kappa_kind']} \u03ba {kappa} (n {found['n']})"


def _breakdowns(board: dict) -> list[dict[str, Any]]:
    """MedR-Bench's subgroups (rare / common, body systems) of each task that has them."""
    found = []
    for task in board["tasks"]:
        groups = task.get("subgroups")
        if not groups:
            continue
        metrics = sorted({m for group in groups.values() for m in group["metrics"]})
        rows = [
            {
                "name": name,
                "n": group["n"],
                "cells": [
                    f"{group['metrics'][m]['value']:.1f}" if m in group["metrics"] else "" for m in metrics
                ],
            }
            for name, group in groups.items()
        ]
        found.append({"task": task["task"], "metrics": metrics, "groups": rows})
    return found


def _failed_items(samples: Iterable[dict]) -> tuple[list[dict[str, Any]], int]:
    """The failed samples the page shows (the first ``FAILED_ITEMS_SHOWN``), and how many it leaves out."""
    failed = [s for s in samples if not s.get("passed")]
    items = []
    for sample in failed[:FAILED_ITEMS_SHOWN]:
        messages = sample.get("messages") or []
        verdict = (
            sample["error"]["message"]
            if sample.get("error")
            else sample.get("pass_rule") or json.dumps(sample.get("scores"))
        )
        reference = sample.get("reference")
        items.append(
            {
                "benchmark": sample["benchmark"],
                "task": sample["task"],
                "id": sample["id"],
                "truncated": sample.get("truncated"),
                "verdict": verdict,
                # each text masked before it is escaped (a password with "&" or "<" in it would no
                # longer match) or cut (most of a secret would be left): the page is masked again
                "prompt": mask("\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in messages)),
                "output": mask(sample.get("output") or ""),
                "parsed": mask(json.dumps(sample.get("parsed"), ensure_ascii=False, indent=1))[:4000],
                "reference": "(none)" if reference is None else mask(reference),
            }
        )
    return items, max(len(failed) - FAILED_ITEMS_SHOWN, 0)


def _judges(judge: dict) -> str:
    """Every judge of the run (a jury lists several), else the judge's name."""
    names = [entry["model"] for entry in judge.get("judges", [])]
    return ", ".join(names) if len(names) > 1 else judge["model"]


def _settings(runs: list[tuple[str, dict]]) -> list[dict[str, Any]]:
    """What each run was run with, so runs made differently are not read as comparable."""
    return [
        {
            "name": name,
            "model": board["run"]["model"]["name"],
            "judge": _judges(board["run"]["judge"]),
            "scoring": board["run"]["scoring"].get("meds_scoring"),
            "finished": board["run"]["finished"],
        }
        for name, board in runs
    ]


def render(runs: list[tuple[str, dict]], samples: Iterable[dict] = ()) -> str:
    """The page for one or more runs (the last is the current one); ``samples`` feed the item browser."""
    failed, not_shown = _failed_items(samples)
    return _template().render(
        settings=_settings(runs),
        legend=[
            {"colour": COLOURS[i % len(COLOURS)], "name": name, "model": board["run"]["model"]["name"]}
            for i, (name, board) in enumerate(runs)
        ],
        chart=_chart(runs),
        task_rows=_task_rows(runs),
        breakdowns=_breakdowns(runs[-1][1]),
        failed=failed,
        failed_not_shown=not_shown,
    )
