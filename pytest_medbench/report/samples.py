"""The samples file: one JSON line per item, appended and flushed as each result arrives, so a run
that dies part-way keeps every line it had."""

from __future__ import annotations

import json
from pathlib import Path

from .records import ItemRecord

SAMPLE_FIELDS = (
    "benchmark",
    "task",
    "category",
    "id",
    "nodeid",
    "tags",
    "messages",
    "output",
    "epoch_outputs",
    "parsed",
    "scores",
    "passed",
    "error",
    "finish_reason",
    "truncated",
    "usage",
    "judge_usage",
)


class SamplesWriter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("w", encoding="utf-8")

    def write(self, record: ItemRecord) -> None:
        data = record.to_dict()
        line = {name: data[name] for name in SAMPLE_FIELDS}
        self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()
