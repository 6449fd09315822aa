"""Where a run's answers came from: the leaderboard's ``run.cache`` and the terminal's warning.

Answers reused from the cache were given in an earlier run, perhaps by another endpoint or another
model served under the same name; a leaderboard must say so instead of presenting them as this
run's (``--model-revision`` keeps revisions apart in the cache key).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .records import ItemRecord


def cache_section(records: Iterable[ItemRecord], run_id: str) -> dict[str, Any]:
    """``run.cache``: how many answers were reused, from which earlier runs, and what this run's
    endpoint reported serving."""
    earlier: dict[tuple, dict[str, Any]] = {}
    served_now: set[str] = set()
    reused = 0
    for record in records:
        for origin in record.provenance:
            if origin["run"] == run_id:
                if origin["served_model"]:
                    served_now.add(origin["served_model"])
                continue
            reused += 1
            key = (origin["run"], origin["api_base"], origin["served_model"])
            entry = earlier.setdefault(
                key,
                {
                    "id": origin["run"] or None,
                    "date": None,
                    "api_base": origin["api_base"],
                    "served_model": origin["served_model"],
                    "answers": 0,
                },
            )
            entry["answers"] += 1
            if origin["created"] is not None:
                date = dt.datetime.fromtimestamp(origin["created"], dt.timezone.utc).isoformat(
                    timespec="seconds"
                )
                entry["date"] = min(filter(None, (entry["date"], date)))
    return {
        "run": run_id,  # what a later run reusing these answers names
        "reused": reused,
        "runs": list(earlier.values()),
        "served_models": sorted(served_now),
    }


def reuse_warnings(section: dict[str, Any], api_bases: set[str | None]) -> list[str]:
    """A line for each earlier run whose reused answers came from another endpoint or served model."""
    lines = []
    for entry in section["runs"]:
        reasons = []
        if entry["api_base"] not in api_bases:
            reasons.append(
                f"endpoint {entry['api_base']} (this run: {', '.join(map(str, sorted(api_bases, key=str)))})"
            )
        served_now = section["served_models"]
        if served_now and entry["served_model"] not in served_now:
            reasons.append(f"served model {entry['served_model']} (this run: {', '.join(served_now)})")
        if reasons:
            origin = f"run {entry['id']} of {entry['date']}"
            lines.append(
                f"WARNING: {entry['answers']} cached answers reused from {origin} came from another "
                f"{' and '.join(reasons)}; use --model-revision or --medbench-no-cache to ask afresh"
            )
    return lines
