"""The leaderboard JSON: run metadata plus aggregated entries, validated against the shipped schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..models.secrets import masked_json
from ..utf8 import ERRORS
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
    # jsonschema walks every per-item entry: 0.49 s for 15,000 items, against about 0.01 s for the
    # plain check of the same rules; so it sees "items" only when that check finds fault there
    if _items_plainly_valid(leaderboard.get("items")):
        leaderboard = {**leaderboard, "items": {}}
    errors = sorted(_validator().iter_errors(leaderboard), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/" + "/".join(str(p) for p in errors[0].absolute_path)
        raise LeaderboardError(f"leaderboard invalid at {where}: {errors[0].message}")


_ITEM_KEYS = frozenset(("passed", "scores", "error", "counts", "unscorable"))
_NUMBERS = (int, float)  # JSON numbers as json.loads gives them; a bool is none


def _items_plainly_valid(items: object) -> bool:
    """True when ``items`` certainly meets the schema's "items" rules, checked in plain Python with
    the schema's exact types (a bool is no number); entries with keys the schema does not name are
    left to jsonschema."""
    if type(items) is not dict:
        return False
    for task in items.values():
        if type(task) is not dict:
            return False
        for entry in task.values():
            if type(entry) is not dict or not entry.keys() <= _ITEM_KEYS:
                return False
            if type(entry.get("passed")) is not bool:
                return False
            scores = entry.get("scores")
            if type(scores) is not dict or not all(v is None or type(v) in _NUMBERS for v in scores.values()):
                return False
            if "error" in entry and entry["error"] is not None and type(entry["error"]) is not str:
                return False
            counts = entry.get("counts", {})
            if type(counts) is not dict or not all(type(v) in _NUMBERS for v in counts.values()):
                return False
            if "unscorable" in entry and type(entry["unscorable"]) is not bool:
                return False
    return True


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
        if record.counted:
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
    text = masked_json(leaderboard, indent=2, ensure_ascii=False) + "\n"
    partial.write_text(text, encoding="utf-8", errors=ERRORS)
    partial.replace(path)
