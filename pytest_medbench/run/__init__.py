"""The Run: one per pytest process, the one object the plugin, the reporter and the leaderboard's
metadata use. It holds the run's parts, each with one job, in the order an item meets them:

- ``catalog.py``: data -> items (the data directory, declared tasks, the lock file, ``--medbench-limit``);
- ``clients.py``: the model, judge and agent clients, cache and rate limits, prompts and evidence;
- ``scheduler.py``: items -> model -> scores (the prefetch pool and its sharding, ``evaluate``);
- ``metering.py``: each call's usage, into the item's record;
- ``collector.py``: on the controller, the records for the report and the samples file.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from ..items.base import EvalItem, Services
from ..models.client import ModelSpec
from ..options import Settings
from ..prompts.medr import MedrPrompts
from ..report.records import ItemRecord
from .catalog import Catalog
from .clients import Clients
from .collector import Collector
from .scheduler import Scheduler


class Run:
    """The run's parts behind the names the plugin and the reporter use."""

    def __init__(self, settings: Settings, config: pytest.Config, *, is_controller: bool) -> None:
        self.settings = settings
        worker_input: dict = getattr(config, "workerinput", {})
        # one for the whole run: the controller's, handed to each worker (plugin.pytest_configure_node)
        self.run_id = worker_input.get("medbench_run_id") or uuid.uuid4().hex
        self.clients = Clients(settings, config, self.run_id)
        self.catalog = Catalog(settings, config)
        self.started = now()
        self.scheduler = Scheduler(settings, self.clients, worker_input)
        self.collector = Collector(settings.samples_path if is_controller else None)

    # -- data -> items (catalog.py) ---------------------------------------------------------------

    @property
    def meds_items(self) -> list[EvalItem]:
        return self.catalog.meds_items

    @property
    def medr_items(self) -> list[EvalItem]:
        return self.catalog.medr_items

    @property
    def tasks_dir(self) -> Path | None:
        return self.catalog.tasks_dir

    def check_data_dir(self) -> None:
        self.catalog.check_data_dir()

    def absent_meds_tasks(self) -> dict[str, str]:
        return self.catalog.absent_meds_tasks()

    # -- model, judges, agent (clients.py) --------------------------------------------------------

    @property
    def model(self) -> ModelSpec:
        return self.clients.model

    @property
    def groups(self) -> dict:
        return self.clients.groups

    @property
    def rootdir(self) -> Path:
        return self.clients.rootdir

    @property
    def prompts(self) -> MedrPrompts:
        return self.clients.prompts

    def check_models(self) -> None:
        self.clients.check_models()

    def check_cache(self) -> None:
        self.clients.check_cache()

    def worker_cache_path(self) -> Path | None:
        return self.clients.worker_cache_path()

    def judge_specs(self) -> list[ModelSpec]:
        return self.clients.judge_specs()

    def agent_spec(self) -> ModelSpec | None:
        return self.clients.agent_spec()

    def evidence_source(self) -> str:
        return self.clients.evidence_source()

    # -- item -> model -> score (scheduler.py) ----------------------------------------------------

    def services(self, record: ItemRecord, epoch: int) -> Services:
        return self.scheduler.services(record, epoch)

    def start_http_process(self) -> None:
        self.clients.start_http_process()

    def prefetch(self, items: list[EvalItem]) -> None:
        self.scheduler.prefetch(items)

    def stop_prefetch(self) -> None:
        self.scheduler.stop_prefetch()

    def evaluate(self, item: EvalItem, node: pytest.Item) -> ItemRecord:
        return self.scheduler.evaluate(item, node)

    # -- controller: records (collector.py) -------------------------------------------------------

    @property
    def records(self) -> dict[tuple[str, str, str], ItemRecord]:
        return self.collector.records

    def collect(self, record: ItemRecord) -> None:
        self.collector.collect(record)

    def note_missing(self, missing: list[ItemRecord]) -> None:
        self.collector.note_missing(missing)

    def close(self) -> None:
        """End of the process: the samples file is finished, then the cache closed."""
        self.collector.close()
        self.clients.close()


def now() -> str:
    """The time in UTC to the second, as the leaderboard's ``started`` and ``finished`` give it."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
