"""The Run: one per pytest process. It loads the data, makes the items, evaluates them through the
model client, and (on the controller only) collects the records into the report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import __version__
from .data.files import MEDR_DIR, MEDS_DIR, DataFileError, data_files, meds_task_files, sha256_file
from .items.base import BrokenFile, EvalItem
from .models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
from .models.errors import ModelCallError
from .options import Settings
from .report.records import ItemRecord
from .report.samples import SamplesWriter

RECORD_KEY = pytest.StashKey[ItemRecord]()
PACKAGES = (
    "pytest",
    "pytest-xdist",
    "litellm",
    "rapidfuzz",
    "jsonschema",
    "nltk",
    "rouge",
    "jieba",
    "janome",
)


class ItemFailed(Exception):
    """An item that could not be scored (model or data error); its record says why."""


class Run:
    def __init__(self, settings: Settings, *, rootdir: Path, is_controller: bool) -> None:
        self.settings = settings
        self.rootdir = rootdir
        self.is_controller = is_controller
        self.model = ModelSpec.parse(settings.model, settings.api_base)
        self.started = _now()
        self.records: dict[tuple[str, str, str], ItemRecord] = {}
        self.data_errors: list[str] = []
        self._client: ModelClient | None = None
        self._samples = (
            SamplesWriter(settings.samples_path) if is_controller and settings.samples_path else None
        )

    # -- data -> items --------------------------------------------------------------------------

    def check_data_dir(self) -> None:
        root = self.settings.data_dir
        if not root.is_dir():
            raise pytest.UsageError(f"--medbench-data {root}: no such directory")
        if not (root / MEDS_DIR).is_dir() and not (root / MEDR_DIR).is_dir():
            raise pytest.UsageError(f"--medbench-data {root}: holds neither {MEDS_DIR}/ nor {MEDR_DIR}/")

    @functools.cached_property
    def meds_items(self) -> list[EvalItem]:
        from .data.meds import load_meds
        from .items.meds import meds_items
        from .prompts.meds import MedsPromptConfig

        tasks, errors = load_meds(self.settings.data_dir)
        config = MedsPromptConfig(self.settings.protocol, self.settings.shots, self.settings.seed or 0)
        limited = [self._limit(task) for task in tasks]
        return [*meds_items(limited, config, self.settings.scoring), *(BrokenFile("meds", e) for e in errors)]

    @functools.cached_property
    def medr_items(self) -> list[EvalItem]:
        from .data.medr import load_medr
        from .items.medr import medr_items

        cases, errors = load_medr(self.settings.data_dir)
        items: list[EvalItem] = list(medr_items(cases))
        if self.settings.limit is not None:
            per_setting: dict[str, int] = {}
            kept = []
            for item in items:
                per_setting[item.task] = per_setting.get(item.task, 0) + 1
                if per_setting[item.task] <= self.settings.limit:
                    kept.append(item)
            items = kept
        return [*items, *(BrokenFile("medr", e) for e in errors)]

    def _limit(self, task: Any) -> Any:
        if self.settings.limit is None:
            return task
        return dataclasses.replace(task, instances=task.instances[: self.settings.limit])

    # -- item -> model -> score -----------------------------------------------------------------

    @property
    def client(self) -> ModelClient:
        if self._client is None:
            from .models.cache import ResponseCache

            cache = ResponseCache(self.settings.cache_path) if self.settings.cache_path else None
            params = GenerationParams(self.settings.temperature, self.settings.max_tokens, self.settings.seed)
            retry = RetryPolicy(max_retries=self.settings.retries)
            self._client = ModelClient(
                self.model, params, cache=cache, timeout_s=self.settings.timeout_s, retry=retry
            )
        return self._client

    def evaluate(self, item: EvalItem, node: pytest.Item) -> ItemRecord:
        """Ask the model, score the answer, and stash the record on the node for the reporter."""
        record = ItemRecord(item.benchmark, item.task, item.category, item.item_id, node.nodeid, item.tags)
        node.stash[RECORD_KEY] = record
        try:
            record.messages = item.messages()
            context = item.builtin_context()
            outputs, scores = [], []
            for epoch in range(self.settings.epochs):
                completion = self.client.complete(record.messages, epoch=epoch, context=context)
                _add_usage(record, completion)
                outputs.append(completion.text)
                scores.append(item.score(completion.text))
        except ModelCallError as exc:
            record.error = {"kind": exc.kind, "message": str(exc)}
            raise ItemFailed(f"{item.benchmark} {item.task} {item.item_id}: {exc}") from None
        except DataFileError as exc:
            record.error = {"kind": "data", "message": str(exc)}
            raise ItemFailed(f"data error: {exc}") from None
        except Exception as exc:
            record.error = {"kind": "harness", "message": f"{type(exc).__name__}: {exc}"}
            raise
        record.output, record.epoch_outputs = outputs[0], outputs if len(outputs) > 1 else []
        record.parsed = scores[-1].parsed
        record.aggregation = scores[0].aggregation
        record.passed = all(score.passed for score in scores)
        record.scores = _mean_scores([score.scores for score in scores])
        record.counts = {k: sum(s.counts.get(k, 0.0) for s in scores) for k in scores[0].counts}
        return record

    # -- controller: collect and report ----------------------------------------------------------

    def collect(self, record: ItemRecord) -> None:
        self.records[record.key] = record
        if self._samples is not None:
            self._samples.write(record)

    def close(self) -> None:
        if self._samples is not None:
            self._samples.close()
        if self._client is not None and self._client.cache is not None:
            self._client.cache.close()

    def absent_meds_tasks(self) -> dict[str, str]:
        """MedS-Bench tasks with no file in the data directory, so they are never silently absent."""
        from .data.meds_tasks import absent_tasks

        present = {path.name.split("_")[0] for path in meds_task_files(self.settings.data_dir)}
        return absent_tasks(present)

    def run_metadata(self) -> dict[str, Any]:
        root = self.settings.data_dir
        return {
            "model": {
                "name": self.model.name,
                "litellm_model": self.model.litellm_model,
                "api_base": None if self.model.name.startswith("replay:") else self.model.api_base,
                "builtin": self.model.builtin,
            },
            "judge": {
                "model": self.settings.judge_model or "offline",
                "approximate": not self.settings.judge_model,
            },
            "plugin_version": __version__,
            "git_commit": _git_commit(self.rootdir),
            "data": {
                "dir": str(root),
                "files": {path.relative_to(root).as_posix(): sha256_file(path) for path in data_files(root)},
            },
            "meds_tasks_absent": self.absent_meds_tasks(),
            "prompt_templates": _template_hashes(),
            "generation": {
                "temperature": self.settings.temperature,
                "max_tokens": self.settings.max_tokens,
                "seed": self.settings.seed,
                "epochs": self.settings.epochs,
                "timeout_s": self.settings.timeout_s,
            },
            "scoring": {
                "meds_scoring": self.settings.scoring,
                "meds_protocol": self.settings.protocol,
                "meds_shots": self.settings.shots,
                "limit": self.settings.limit,
            },
            "started": self.started,
            "finished": _now(),
            "python": platform.python_version(),
            "packages": {name: _version(name) for name in PACKAGES},
        }


def _add_usage(record: ItemRecord, completion: Any) -> None:
    usage = record.usage
    usage.calls += 1
    if completion.cached:
        usage.cache_hits += 1
        return
    usage.prompt_tokens += completion.prompt_tokens
    usage.completion_tokens += completion.completion_tokens
    usage.cost_usd += completion.cost_usd
    usage.latency_s += completion.latency_s


def _mean_scores(per_epoch: list[dict[str, float | None]]) -> dict[str, float | None]:
    merged: dict[str, float | None] = {}
    for name in per_epoch[0]:
        values = [scores[name] for scores in per_epoch if scores.get(name) is not None]
        merged[name] = sum(values) / len(values) if values else None
    return merged


def _template_hashes() -> dict[str, str]:
    from .prompts.templates import template_hashes

    return template_hashes()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit(rootdir: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(rootdir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
