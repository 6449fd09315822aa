"""The leaderboard JSON: run metadata plus aggregated entries, validated against the shipped schema."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .aggregate import aggregate
from .records import ItemRecord

SCHEMA_VERSION = "1.0"
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


def build(run: dict[str, Any], records: list[ItemRecord]) -> dict[str, Any]:
    leaderboard = {"schema_version": SCHEMA_VERSION, "run": run, **aggregate(records)}
    validate(leaderboard)
    return leaderboard


def write(path: Path, leaderboard: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(leaderboard, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(path)
