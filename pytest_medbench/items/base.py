"""What every benchmark item offers the runner: an id, markers, a prompt, a context and a scorer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..data.files import DataFileError, LoadError
from ..metrics.score import ItemScore


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

    def messages(self) -> list[dict[str, str]]: ...
    def builtin_context(self) -> dict: ...
    def score(self, output: str) -> ItemScore: ...


@dataclass(frozen=True)
class BrokenFile:
    """Stands in for the items of a data file that could not be loaded, so the fault shows up as
    one failing item that names the file and the place, while every valid task still runs."""

    benchmark: str
    error: LoadError
    category: str = "data_error"

    @property
    def task(self) -> str:
        return self.error.path.stem

    @property
    def item_id(self) -> str:
        return "load_error"

    @property
    def param_id(self) -> str:
        return f"{self.task}-load_error"

    @property
    def markers(self) -> tuple[str, ...]:
        return (self.benchmark,)

    @property
    def tags(self) -> dict:
        return {}

    def messages(self) -> list[dict[str, str]]:
        raise DataFileError(self.error)

    def builtin_context(self) -> dict:
        return {}

    def score(self, output: str) -> ItemScore:
        raise DataFileError(self.error)
