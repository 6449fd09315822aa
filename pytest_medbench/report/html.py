"""A self-contained HTML leaderboard: bars with CI whiskers per category for each run, the task table
with deltas, MedR-Bench breakdowns, and a browser of failed items. No network at view time.

Every piece of model, judge or data text goes through ``html.escape`` (or JSON with ``<`` escaped),
so an output containing ``<script>`` is shown as text, never run.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

from .audit import audit_note

PRIMARY = ("accuracy", "f1", "rouge_l", "precision", "recall", "bleu_1", "efficiency")
COLOURS = ("#2f6db5", "#d9822b", "#3a9a5b", "#b0413e", "#7a5ba6", "#5b6770")
FAILED_ITEMS_SHOWN = 500
MIN_BAR = 2.0  # px: the width of a zero bar

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2430}svg.bars{width:100%;height:auto}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d5d9e0;padding:3px 8px;text-align:right}
th{background:#f1f3f6}td:first-child,th:first-child{text-align:left}.neg{color:#b0413e}.pos{color:#2d7d46}
.legend span{display:inline-block;margin-right:16px}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px}
details{border:1px solid #d5d9e0;margin:4px 0;padding:4px 8px}summary{cursor:pointer}
pre{white-space:pre-wrap;background:#f7f8fa;padding:6px;max-height:300px;overflow:auto}.meta{color:#5b6770}
"""

SCRIPT = """
document.getElementById('filter').addEventListener('input', function (event) {
  var needle = event.target.value.toLowerCase();
  document.querySelectorAll('#failed details').forEach(function (item) {
    item.style.display = item.textContent.toLowerCase().indexOf(needle) >= 0 ? '' : 'none';
  });
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def natural_key(text: str) -> list:
    """task1 < task16 < task100: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _metric_order(name: str) -> tuple[int, str]:
    return (PRIMARY.index(name) if name in PRIMARY else len(PRIMARY), name)


def _bars(runs: list[tuple[str, dict]]) -> str:
    """One SVG: a group per category, a bar per metric and run, whiskers for the 95% CI. A zero is
    drawn as a thin bar, so it reads as zero, not as missing."""
    categories = sorted({(c["benchmark"], c["category"]) for _, board in runs for c in board["categories"]})
    entries = {
        (c["benchmark"], c["category"], index): c
        for index, (_, board) in enumerate(runs)
        for c in board["categories"]
    }
    rows = []  # (label, run index, metric, entry) per bar; label only on a category's first bar
    for benchmark, category in categories:
        found = [(i, entries.get((benchmark, category, i))) for i in range(len(runs))]
        metrics = sorted({m for _, entry in found if entry for m in entry["metrics"]}, key=_metric_order)
        label = f"{benchmark}.{category}"
        for metric in metrics:
            for index, entry in found:
                if entry and metric in entry["metrics"]:
                    rows.append((label, index, metric, entry))
                    label = ""
        rows.append(None)  # a gap between categories
    bar_h, step, left, width = 12, 15, 230, 760
    height = step * len(rows)
    svg = [
        f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {left + width + 170} {height + 30}" '
        f'role="img" aria-label="category scores">'
    ]
    for tick in range(0, 101, 20):
        x = left + width * tick / 100
        svg.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height}" stroke="#e3e6eb"/>')
        svg.append(f'<text x="{x}" y="{height + 14}" font-size="11" text-anchor="middle">{tick}</text>')
    for row, bar in enumerate(rows):
        if bar is None:
            continue
        label, index, metric, entry = bar
        y = row * step
        if label:
            svg.append(f'<text x="0" y="{y + 11}" font-size="12">{_e(label)}</text>')
        value, (low, high) = entry["metrics"][metric]["value"], entry["metrics"][metric]["ci95"]
        colour = COLOURS[index % len(COLOURS)]
        svg.append(
            f'<rect x="{left}" y="{y}" width="{max(width * value / 100, MIN_BAR):.1f}" height="{bar_h}" '
            f'fill="{colour}"><title>{_e(metric)} {value:.2f} [{low:.2f}, {high:.2f}]</title></rect>'
        )
        x_low, x_high, mid = left + width * low / 100, left + width * high / 100, y + bar_h / 2
        svg.append(f'<line x1="{x_low:.1f}" y1="{mid}" x2="{x_high:.1f}" y2="{mid}" stroke="#1d2430"/>')
        for x in (x_low, x_high):
            svg.append(
                f'<line x1="{x:.1f}" y1="{y + 2}" x2="{x:.1f}" y2="{y + bar_h - 2}" stroke="#1d2430"/>'
            )
        svg.append(
            f'<text x="{left + width + 6}" y="{y + 10}" font-size="11">{_e(metric)} {value:.1f}</text>'
        )
    svg.append("</svg>")
    return "\n".join(svg)


def _audit_mark(task: dict) -> str:
    """The majority share beside a label task (what a constant answer scores), degenerate tasks in red."""
    note = audit_note(task.get("audit"))
    if not note:
        return ""
    tone = " neg" if "degenerate" in task["audit"]["flags"] else ""
    return f" <span class='meta audit{tone}'>{_e(note)}</span>"


def _task_table(runs: list[tuple[str, dict]]) -> str:
    first = runs[0][1]
    header = "".join(f"<th>{_e(name)}</th>" for name, _ in runs) + ("<th>delta</th>" if len(runs) > 1 else "")
    rows = [f"<table><tr><th>task</th><th>metric</th><th>n</th>{header}<th>judge agreement</th></tr>"]
    for task in sorted(first["tasks"], key=lambda t: (t["benchmark"], natural_key(t["task"]))):
        for metric in task["metrics"]:
            values = []
            for _, board in runs:
                match = next(
                    (
                        t
                        for t in board["tasks"]
                        if (t["benchmark"], t["task"]) == (task["benchmark"], task["task"])
                    ),
                    None,
                )
                values.append(
                    match["metrics"][metric]["value"] if match and metric in match["metrics"] else None
                )
            cells = "".join(f"<td>{'' if v is None else f'{v:.2f}'}</td>" for v in values)
            if len(runs) > 1 and None not in (values[0], values[-1]):
                delta = values[-1] - values[0]
                tone = "neg" if delta < 0 else "pos" if delta > 0 else ""
                cells += f'<td class="{tone}">{delta:+.2f}</td>'
            elif len(runs) > 1:
                cells += "<td></td>"
            cells += f"<td>{_agreement(match, metric)}</td>"  # the current run's jury, if any
            cut = f" <span class='neg'>{task['truncated']} truncated</span>" if task.get("truncated") else ""
            rows.append(
                f"<tr><td>{_e(task['benchmark'])}.{_e(task['task'])} <span class='meta'>({_e(task['category'])})"
                f"</span>{cut}{_audit_mark(task)}</td><td>{_e(metric)}</td><td>{task['n']}</td>{cells}</tr>"
            )
    rows.append("</table>")
    return "\n".join(rows)


def _agreement(task: dict | None, metric: str) -> str:
    """A jury's agreement on ``metric`` in ``task``: percent agreement, kappa and n (or nothing)."""
    found = (task or {}).get("judge_agreement", {}).get(metric)
    if not found:
        return ""
    kappa = "undefined" if found["kappa"] is None else f"{found['kappa']:.2f}"
    return _e(
        f"{found['percent_agreement']:.0f}% agree, {found['kappa_kind']} \u03ba {kappa} (n {found['n']})"
    )


def _breakdowns(board: dict) -> str:
    parts = []
    for task in board["tasks"]:
        groups = task.get("subgroups")
        if not groups:
            continue
        metrics = sorted({m for group in groups.values() for m in group["metrics"]})
        head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
        rows = [f"<h3>{_e(task['task'])}</h3><table><tr><th>subgroup</th><th>n</th>{head}</tr>"]
        for name, group in groups.items():
            cells = "".join(
                f"<td>{group['metrics'][m]['value']:.1f}</td>" if m in group["metrics"] else "<td></td>"
                for m in metrics
            )
            rows.append(f"<tr><td>{_e(name)}</td><td>{group['n']}</td>{cells}</tr>")
        parts.append("\n".join(rows) + "</table>")
    return "\n".join(parts) or "<p class='meta'>No MedR-Bench items in this run.</p>"


def _failed_items(samples: Iterable[dict]) -> str:
    failed = [s for s in samples if not s.get("passed")]
    items = []
    for sample in failed[:FAILED_ITEMS_SHOWN]:
        prompt = "\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in sample.get("messages") or [])
        verdict = (
            sample["error"]["message"]
            if sample.get("error")
            else sample.get("pass_rule") or json.dumps(sample.get("scores"))
        )
        reference = sample.get("reference")
        parsed = json.dumps(sample.get("parsed"), ensure_ascii=False, indent=1)[:4000]
        cut = " [truncated at the token limit]" if sample.get("truncated") else ""
        items.append(
            f"<details><summary>{_e(sample['benchmark'])}.{_e(sample['task'])} {_e(sample['id'])}{cut}: "
            f"{_e(verdict)}"
            f"</summary><p>prompt</p><pre>{_e(prompt)}</pre><p>output</p><pre>{_e(sample.get('output') or '')}</pre>"
            f"<p>parsed answer and judge</p><pre>{_e(parsed)}</pre>"
            f"<p>reference</p><pre>{_e('(none)' if reference is None else reference)}</pre></details>"
        )
    more = (
        f"<p class='meta'>{len(failed) - FAILED_ITEMS_SHOWN} more not shown.</p>"
        if len(failed) > FAILED_ITEMS_SHOWN
        else ""
    )
    return "\n".join(items) + more if items else "<p class='meta'>No failed items (or no samples given).</p>"


def _judges(judge: dict) -> str:
    """Every judge of the run (a jury lists several), else the judge's name."""
    names = [entry["model"] for entry in judge.get("judges", [])]
    return ", ".join(names) if len(names) > 1 else judge["model"]


def _settings(runs: list[tuple[str, dict]]) -> str:
    """One line per run: what it was run with, so runs made differently are not read as comparable."""
    lines = []
    for name, board in runs:
        run = board["run"]
        lines.append(
            f"<li>{_e(name)}: model {_e(run['model']['name'])}; judge {_e(_judges(run['judge']))}; "
            f"scoring {_e(run['scoring'].get('meds_scoring'))}; finished {_e(run['finished'])}</li>"
        )
    return f"<ul class='meta settings'>{''.join(lines)}</ul>"


def render(runs: list[tuple[str, dict]], samples: Iterable[dict] = ()) -> str:
    """The page for one or more runs (the last is the current one); ``samples`` feed the item browser."""
    legend = "".join(
        f'<span><i class="swatch" style="background:{COLOURS[i % len(COLOURS)]}"></i>{_e(name)} '
        f"({_e(board['run']['model']['name'])})</span>"
        for i, (name, board) in enumerate(runs)
    )
    current = runs[-1][1]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pytest-medbench leaderboard</title><style>{STYLE}</style></head>
<body><h1>pytest-medbench leaderboard</h1>
{_settings(runs)}
<h2>Categories</h2><div class="legend">{legend}</div>{_bars(runs)}
<h2>Tasks</h2>{_task_table(runs)}
<h2>MedR-Bench breakdowns</h2>{_breakdowns(current)}
<h2>Failed items</h2><input id="filter" placeholder="filter failed items" aria-label="filter failed items">
<div id="failed">{_failed_items(samples)}</div>
<script>{SCRIPT}</script></body></html>
"""
