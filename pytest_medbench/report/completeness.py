"""Which selected items never ran: a run stopped by -x, --maxfail, Ctrl-C or a crashed worker must
say so, so that a leaderboard of 1 item is never read as a leaderboard of 99.

The controller learns the selected node ids from collection (its own, or each xdist worker's) and
marks an id finished when its teardown report arrives (or xdist reports its worker crashed on it).
Every selected id that never finished makes the run incomplete, whatever the test: a benchmark
item, a test of your own that calls ``medbench.record`` (its task is known only once it runs), or
any other test. The benchmark items among them are also made records, for the samples file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .records import ItemRecord


def param_id(nodeid: str) -> str | None:
    """``mcqa-task57_medqa_usmle-3`` from ``suites/test_meds.py::test_meds[mcqa-task57_medqa_usmle-3]``."""
    name = nodeid.rsplit("::", 1)[-1]
    if not name.endswith("]") or "[" not in name:
        return None
    return name[name.index("[") + 1 : -1]


class Completeness:
    """Selected node ids against finished ones; ``items_by_param`` (param id -> EvalItem, made only
    when needed: it loads the data) tells which ids are benchmark items."""

    def __init__(self, items_by_param: Callable[[], dict[str, Any]]) -> None:
        self._items_by_param = items_by_param
        self.selected: dict[str, None] = {}  # ordered, so missing ids come out in collection order
        self.finished: set[str] = set()

    def select(self, nodeids: Iterable[str]) -> None:
        self.selected.update(dict.fromkeys(nodeids))

    def finish(self, nodeid: str) -> None:
        self.finished.add(nodeid)

    def record_for(self, nodeid: str, **fields: Any) -> ItemRecord | None:
        """A record for the benchmark item ``nodeid`` names (None for any other test)."""
        item = self._items_by_param().get(param_id(nodeid) or "")
        if item is None:
            return None
        return ItemRecord(item.benchmark, item.task, item.category, item.item_id, nodeid, item.tags, **fields)

    def unfinished(self) -> list[str]:
        """Every selected node id that never finished, in collection order."""
        return [nodeid for nodeid in self.selected if nodeid not in self.finished]

    def missing(self, unfinished: Iterable[str] | None = None) -> list[ItemRecord]:
        """The benchmark items among the ``unfinished`` ids (default: all of them), as records with no
        result."""
        nodeids = self.unfinished() if unfinished is None else unfinished
        records = (self.record_for(nodeid) for nodeid in nodeids)
        return [record for record in records if record is not None]
