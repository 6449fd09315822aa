"""What every benchmark item offers the runner, and what the runner lends an item to solve it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..data.files import DataFileError, LoadError
from ..metrics.score import ItemScore
from ..models.completion import Completion


@dataclass
class Transcript:
    """What solving an item produced: the conversation, the final output, and per-turn details."""

    messages: list[dict[str, str]]
    output: str
    turns: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Services:
    """The model, judge and agent an item may use, bound to one item and one epoch.

    ``ask_model(messages, context)`` calls the evaluated model (``context`` reaches built-in models
    only). ``judge`` and ``agent`` are the LLM or offline implementations; their usage is metered
    apart from the model's. ``memo`` lets items of one case share a conversation within a process;
    ``calls`` logs every metered (kind, completion), and ``recount(logged)`` meters a shared
    conversation's calls again for the item that reuses it (counted on the item that paid for them).
    """

    ask_model: Callable[[list[dict[str, str]], dict], Completion]
    judge: Any
    agent: Any
    prompts: Any
    memo: dict
    epoch: int
    calls: list[tuple[str, Completion]] = field(default_factory=list)
    recount: Callable[[list[tuple[str, Completion]]], None] = lambda logged: None


class EvalItem(Protocol):
    benchmark: str  # "meds" or "medr"

    @property
    def task(self) -> str: ...  # "task57", "oracle_diagnosis", ...
    @property
    def category(self) -> str: ...
    @property
    def item_id(self) -> str: ...
    @property
    def param_id(self) -> str: ...  # the pytest id: reads naturally under -k
    @property
    def markers(self) -> tuple[str, ...]: ...
    @property
    def tags(self) -> dict: ...  # subgroup facts for the report (rare, body systems)
    @property
    def reference(self) -> str | None: ...  # what the answer is scored against, for failure messages

    def solve(self, services: Services) -> Transcript: ...
    def score(self, transcript: Transcript, services: Services) -> ItemScore: ...


@dataclass(frozen=True)
class BrokenFile:
    """Stands in for the items of a data file (or of one MedR-Bench case) that could not be loaded,
    so the fault shows up as one failing item that names the file and the place, while every valid
    task still runs.

    ``where`` is the file's path relative to the data directory: with the case, it makes the item's
    id, so that every broken file and case is its own record (two ``task57_medqa.json`` in two
    folders, three bad cases of one file) and the leaderboard counts them all. ``label`` replaces the
    file stem in the pytest id where two broken files share a stem (``Catalog`` decides)."""

    benchmark: str
    error: LoadError
    where: str = ""
    label: str = ""
    category: str = "data_error"

    @property
    def task(self) -> str:
        return self.error.path.stem

    @property
    def item_id(self) -> str:
        where = self.where or self.error.path.as_posix()
        return f"{where}#{self.error.case}" if self.error.case else where

    @property
    def param_id(self) -> str:
        case = f"-{self.error.case}" if self.error.case else ""
        return f"{self.label or self.task}-load_error{case}"

    @property
    def markers(self) -> tuple[str, ...]:
        return (self.benchmark,)

    @property
    def tags(self) -> dict:
        return {}

    @property
    def reference(self) -> None:
        return None

    def solve(self, services: Services) -> Transcript:
        raise DataFileError(self.error)

    def score(self, transcript: Transcript, services: Services) -> ItemScore:
        raise DataFileError(self.error)
