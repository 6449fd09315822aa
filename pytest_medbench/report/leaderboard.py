"""The leaderboard JSON: run metadata plus aggregated entries, validated against the shipped schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..models.secrets import mask
from .aggregate import aggregate
from .records import ItemRecord

SCHEMA_VERSION = "1.1"  # 1.1 added "items" (per-item scores for paired comparisons)
SCHEMA_PATH = Path(__file__).with_name("leaderboard.schema.json")


class LeaderboardError(Exception):
    """The leaderboard does not match its schema: a harness bug, reported instead of writing bad data."""


@functools.cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate(leaderboard: dict[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(leaderboard), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/" + "/".join(str(p) for p in errors[0].absolute_path)
        raise LeaderboardError(f"leaderboard invalid at {where}: {errors[0].message}")


def build(
    run: dict[str, Any], records: list[ItemRecord], audits: dict[tuple[str, str], dict] | None = None
) -> dict[str, Any]:
    """``audits`` (``report.audit``) by (benchmark, task) go into the matching task entries."""
    leaderboard = {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        **aggregate(records),
        "items": item_scores(records),
    }
    for entry in leaderboard["tasks"]:
        audit = (audits or {}).get((entry["benchmark"], entry["task"]))
        if audit is not None:
            entry["audit"] = audit
    validate(leaderboard)
    return leaderboard


def item_scores(records: list[ItemRecord]) -> dict[str, dict[str, dict]]:
    """Per-item scores keyed "<benchmark>/<task>" then item id: what a later run is compared against."""
    items: dict[str, dict[str, dict]] = {}
    for record in sorted(records, key=lambda r: r.key):
        entry: dict[str, Any] = {"passed": record.passed, "scores": record.scores}
        if record.counts:
            entry["counts"] = record.counts
        if record.error:
            entry["error"] = record.error["kind"]
        if record.unscorable:
            entry["unscorable"] = True
        items.setdefault(f"{record.benchmark}/{record.task}", {})[record.id] = entry
    return items


def write(path: Path, leaderboard: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(mask(json.dumps(leaderboard, indent=2, ensure_ascii=False)) + "\n", encoding="utf-8")
    partial.replace(path)
