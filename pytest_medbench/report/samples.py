"""The samples file: one JSON line per item, appended and flushed as each result arrives, so a run
that dies part-way keeps every line it had. The file is opened (and an earlier one replaced) only
when the first line arrives, so a run stopped before any result leaves the previous file whole."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from ..models.secrets import masked_json
from ..utf8 import ERRORS
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
    "reference",
    "scores",
    "pass_rule",
    "passed",
    "error",
    "finish_reason",
    "truncated",
    "no_content",
    "usage",
    "judge_usage",
    "provenance",
)


class SamplesWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def write(self, record: ItemRecord, **extra: Any) -> None:
        """One line for ``record``; ``extra`` fields (``missing``) are added to it."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8", errors=ERRORS)
        data = record.to_dict()
        line = {**{name: data[name] for name in SAMPLE_FIELDS}, **extra}
        self._handle.write(masked_json(line, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
