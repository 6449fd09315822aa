"""The Run: one per pytest process. It loads the data, makes the items, evaluates them through the
model client, and (on the controller only) collects the records into the report."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import tempfile
import uuid
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import Any

import pytest

from .data.declared import CUSTOM_DIR, DEFAULT_BENCHMARK
from .data.files import MEDR_DIR, MEDS_DIR, DataFileError, LoadError, meds_task_files
from .items.base import BrokenFile, EvalItem, Services
from .judge.agent import LLMAgent
from .judge.evidence import NO_EVIDENCE
from .judge.jury import Jury
from .judge.llm import JUDGE_TEMPERATURE, LLMJudge
from .judge.offline import OfflineAgent, OfflineJudge
from .metadata import now
from .models.cache import Cache, MemoryCache, ResponseCache
from .models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
from .models.errors import ModelCallError
from .models.secrets import mask
from .options import DEFAULT_MODEL, Settings, split_judge
from .prompts.medr import MedrPrompts
from .report.records import ItemRecord, Usage
from .report.samples import SamplesWriter

RECORD_KEY = pytest.StashKey[ItemRecord]()


class ItemFailed(Exception):
    """An item that could not be scored (model or data error); its record says why."""


class Run:
    def __init__(self, settings: Settings, config: pytest.Config, *, is_controller: bool) -> None:
        self.settings = settings
        self.rootdir = Path(str(config.rootpath))
        self.is_controller = is_controller
        self.groups = _router_groups(settings)
        _register_secrets(settings, self.groups)
        self.declarations, self.tasks_dir = _declared_tasks(config)
        self.model = self._spec(_routed_model(settings, self.groups), settings.api_base)
        self.started = now()
        self.records: dict[tuple[str, str, str], ItemRecord] = {}
        self.data_errors: list[str] = []
        self._config = config
        self._hook = config.hook
        self._cache: Cache | None = None
        # under -n, the file every worker reads and writes answers in (see worker_cache_path)
        self._worker_input: dict = getattr(config, "workerinput", {})
        self._scratch: Path | None = None
        self.run_id = self._worker_input.get("testrunuid") or uuid.uuid4().hex  # one for all workers
        self._conversations: dict = {}
        # results prefetch computed, by item key: the test takes its item's (usage included) as is
        self._prefetched: dict[tuple[str, str, str], tuple[ItemRecord, list[str], list[Any]]] = {}
        # model errors prefetch met after all its retries: the test reports them instead of asking
        # again, so an item's attempts are one budget
        self._prefetch_failed: dict[tuple[str, str, str], tuple[ItemRecord, ModelCallError]] = {}
        # the prefetch's pool and its pending work, by dialogue key (see prefetch)
        self._pool: Executor | None = None
        self._ahead: dict[tuple[str, ...], Future] = {}
        self._samples = (
            SamplesWriter(settings.samples_path) if is_controller and settings.samples_path else None
        )

    # -- data -> items --------------------------------------------------------------------------

    def check_models(self) -> None:
        """Fail before any item runs when litellm cannot route a model name (with suggestions)."""
        from .models.aliases import UnknownModel, check_routable

        judges = {split_judge(text)[0] for text in self.settings.judge_models}
        names = {self.settings.model, self.settings.agent_model, *judges} - {None}
        for name in sorted(names):
            spec = self._spec(name, None)
            if not spec.builtin and spec.group is None and "/" not in spec.litellm_model:
                try:
                    check_routable(name, spec.litellm_model, self.settings.model_aliases)
                except UnknownModel as exc:
                    raise pytest.UsageError(str(exc)) from None

    def check_cache(self) -> None:
        """Fail before any item runs when the cache file exists but cannot be used, saying both ways out."""
        from .models.cache import CacheUnusable, check_usable

        path = self.settings.cache_path
        if path is None:
            return
        try:
            check_usable(path)
        except CacheUnusable as exc:
            raise pytest.UsageError(
                f"--medbench-cache {path}: not a usable SQLite cache ({exc}). Delete the file (its answers "
                "are then asked again) or run with --medbench-no-cache"
            ) from None

    def _spec(self, name: str, api_base: str | None) -> ModelSpec:
        return ModelSpec.parse(name, api_base, self.settings.model_aliases, self.groups)

    def check_data_dir(self) -> None:
        root = self.settings.data_dir
        if not root.is_dir():
            raise pytest.UsageError(f"--medbench-data {root}: no such directory")
        if not any((root / folder).is_dir() for folder in (MEDS_DIR, MEDR_DIR, CUSTOM_DIR)):
            raise pytest.UsageError(
                f"--medbench-data {root}: holds none of {MEDS_DIR}/, {MEDR_DIR}/, {CUSTOM_DIR}/"
            )

    @functools.cached_property
    def meds_items(self) -> list[EvalItem]:
        from .data.meds import load_meds
        from .items.meds import meds_items
        from .prompts.meds import MedsPromptConfig

        tasks, errors = self._checked_against_lock(
            MEDS_DIR, *load_meds(self.settings.data_dir, self.declarations, self.tasks_dir)
        )
        config = MedsPromptConfig(self.settings.protocol, self.settings.shots, self.settings.seed or 0)
        limited = [self._limit(task) for task in tasks]
        broken = [BrokenFile(_benchmark_of(error.path, self.settings.data_dir), error) for error in errors]
        return [*meds_items(limited, config, self.settings.scoring), *broken]

    @functools.cached_property
    def medr_items(self) -> list[EvalItem]:
        from .data.medr import load_medr
        from .items.medr import medr_items

        cases, errors = self._checked_against_lock(MEDR_DIR, *load_medr(self.settings.data_dir))
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

    @functools.cached_property
    def _lock_errors(self) -> list[LoadError]:
        from .data.lock import lock_errors

        return lock_errors(self.settings.data_dir)

    def _checked_against_lock(self, folder: str, loaded: list[Any], errors: list[Any]) -> tuple[list, list]:
        """Drop what was loaded from files that differ from the data directory's lock file, and add
        one error per such file (and for an unreadable lock), under the benchmark that reads it."""
        root = self.settings.data_dir
        mine = [
            error
            for error in self._lock_errors
            if error.path.is_relative_to(root / folder)
            or (error.path.parent == root and (folder == MEDS_DIR or not (root / MEDS_DIR).is_dir()))
        ]
        bad = {error.path for error in mine}
        kept = [entry for entry in loaded if entry.path not in bad]
        return kept, [error for error in errors if error.path not in bad] + mine

    def _limit(self, task: Any) -> Any:
        if self.settings.limit is None:
            return task
        return dataclasses.replace(task, instances=task.instances[: self.settings.limit])

    # -- item -> model -> score -----------------------------------------------------------------

    def worker_cache_path(self) -> Path | None:
        """For the controller to hand its -n workers: with --medbench-no-cache and concurrency, a
        scratch file, so what one worker prefetched the others can read (removed at the end)."""
        if self.settings.cache_path or self.settings.concurrency <= 1:
            return None
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="medbench-"))
        return self._scratch / "responses.sqlite3"

    def _new_client(
        self, spec: ModelSpec, params: GenerationParams, revision: str | None = None
    ) -> ModelClient:
        """A client sharing the run's cache; with no cache file but concurrency, an in-memory cache
        (or the controller's scratch file, under -n) carries the prefetched answers to the tests.
        Every process claims each request in the file before asking it (xdist workers, and separate
        runs sharing one cache), so none is asked twice at once.
        Built-in models are never cached."""
        if self._cache is None and not spec.builtin:
            path = self.settings.cache_path or self._worker_input.get("medbench_cache")
            if path:
                self._cache = ResponseCache(path, claims=True)
            elif self.settings.concurrency > 1:
                self._cache = MemoryCache()
        retry = RetryPolicy(max_retries=self.settings.retries, backoff_s=self.settings.backoff_s)
        return ModelClient(
            spec,
            params,
            cache=self._cache,
            timeout_s=self.settings.timeout_s,
            retry=retry,
            run_id=self.run_id,
            revision=revision,
        )

    @functools.cached_property
    def client(self) -> ModelClient:
        params = GenerationParams(self.settings.temperature, self.settings.max_tokens, self.settings.seed)
        client = self._new_client(self.model, params, self.settings.model_revision)
        if (self.settings.rpm or self.settings.tpm) and not self.model.builtin:
            from .models.ratelimit import SharedRateLimit

            # beside the cache, so every worker of the run (and a rerun within the minute) shares it
            folder = (
                self.settings.cache_path.parent
                if self.settings.cache_path
                else self.rootdir / ".medbench_cache"
            )
            client.limit = SharedRateLimit(
                folder / "ratelimit.sqlite3", rpm=self.settings.rpm, tpm=self.settings.tpm
            )
        return client

    @functools.cached_property
    def _judge_clients(self) -> list[ModelClient]:
        """The judges answer at temperature 0, so their verdicts (and cache keys) are reproducible."""
        return [self._evaluator_client(*split_judge(text)) for text in self.settings.judge_models]

    @functools.cached_property
    def _agent_client(self) -> ModelClient | None:
        """The agent model; as the default (the first judge), it shares that judge's API base."""
        model = self.settings.agent_model
        if not model:
            return None
        first = split_judge(self.settings.judge_models[0]) if self.settings.judge_models else None
        return self._evaluator_client(model, first[1] if first and first[0] == model else None)

    def _evaluator_client(self, model: str, api_base: str | None) -> ModelClient:
        spec = self._spec(model, api_base or self.settings.judge_api_base)
        return self._new_client(spec, GenerationParams(temperature=JUDGE_TEMPERATURE))

    def judge_specs(self) -> list[ModelSpec]:
        """Every judge of the run, as resolved (for the leaderboard's ``run.judge.judges``)."""
        return [client.spec for client in self._judge_clients]

    @functools.cached_property
    def prompts(self) -> MedrPrompts:
        return MedrPrompts(self.settings.prompts, self.settings.data_dir / MEDR_DIR / "instructions")

    def evidence(self, query: str) -> str:
        """Evidence passages for the judges, from the ``pytest_medbench_evidence`` hook (or none)."""
        found = self._hook.pytest_medbench_evidence(query=query, k=3, config=self._config)
        return found or NO_EVIDENCE

    def services(self, record: ItemRecord, epoch: int) -> Services:
        """The model, judge and agent for one item and epoch, metering usage into its record."""
        payer = f"{self.run_id} {'/'.join(record.key)}"
        calls: list[tuple[str, Any]] = []

        def meter(kind: str, completion: Any, reused: bool = False) -> None:
            calls.append((kind, completion))
            usage = record.usage if kind == "model" else record.judge_usage
            _add_usage(usage, completion, payer, self.run_id, reused)
            if kind == "model":
                record.finish_reason = completion.finish_reason
                record.truncated = record.truncated or completion.finish_reason == "length"
                record.no_content = completion.no_content or record.no_content

        def recount(logged: list[tuple[str, Any]]) -> None:
            for kind, completion in logged:
                meter(kind, completion, reused=True)

        def ask_model(messages: list[dict[str, str]], context: dict) -> Any:
            record.messages = list(messages)  # kept even when the call fails, for the samples file
            completion = self.client.complete(messages, epoch=epoch, context=context, paid_by=payer)
            meter("model", completion)
            if not self.model.builtin and (origin := completion.provenance()) not in record.provenance:
                record.provenance.append(origin)
            return completion

        def metered(client: ModelClient) -> Any:
            def ask(messages: list[dict[str, str]]) -> str:
                completion = client.complete(messages, paid_by=payer)
                meter("judge", completion)  # the judge's and the agent's usage
                return completion.text

            return ask

        judges = [LLMJudge(metered(client), self.prompts, self.evidence) for client in self._judge_clients]
        judge = OfflineJudge() if not judges else judges[0] if len(judges) == 1 else Jury(judges)
        agent_client = self._agent_client
        agent = LLMAgent(metered(agent_client), self.prompts) if agent_client else OfflineAgent()
        return Services(ask_model, judge, agent, self.prompts, self._conversations, epoch, calls, recount)

    def prefetch(self, items: list[EvalItem]) -> None:
        """Start answering ``items`` ``--medbench-concurrency`` at a time, in the order the tests will
        ask for them, while the tests run: a test waits only for its own item, so the wall time
        approaches the longer of the model's time and the harness's, not their sum.

        Each answer fills the cache (model, agent and judge calls alike) and is kept for its test. A
        bounded pool keeps N calls in flight ahead of the test loop. Errors are left for the test to
        meet again and report; one item per dialogue is prefetched, since its sibling reuses the same
        conversation (its test waits for that). An xdist worker takes its own share of them (every
        worker collected the same list); the shared cache's claims keep a test from asking again
        what another worker is still asking. ``stop_prefetch`` ends it.
        """
        from concurrent.futures import ThreadPoolExecutor

        first_of_dialogue: dict[tuple[str, ...], EvalItem] = {}
        for item in items:
            first_of_dialogue.setdefault(_dialogue_key(item), item)
        chosen = list(first_of_dialogue.items())
        if self._worker_input:  # shares by dialogue, so that both settings of one land together
            count = self._worker_input["workercount"]
            worker = int(self._worker_input["workerid"].removeprefix("gw")) % count
            chosen = chosen[worker::count]

        # the clients (and the cache they share) are made here, once: cached_property does not lock
        # on Python 3.12+, and the threads below would each make their own
        _ = (self.client, self._judge_clients, self._agent_client)

        def answer(item: EvalItem) -> None:
            record = ItemRecord(item.benchmark, item.task, item.category, item.item_id)
            try:
                self._prefetched[record.key] = (record, *self._solve_and_score(item, record))
            except ModelCallError as exc:
                self._prefetch_failed[record.key] = (record, exc)
            except Exception:  # the test meets the same error again and reports it
                pass

        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="medbench-prefetch")
        self._ahead = {key: self._pool.submit(answer, item) for key, item in chosen}

    def stop_prefetch(self) -> None:
        """After the test loop (which -x or Ctrl-C may cut short): drop what was not started, and
        wait for the calls in flight, so nothing writes to the cache once it is closed."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._ahead = None, {}

    def _solve_and_score(self, item: EvalItem, record: ItemRecord) -> tuple[list[str], list[Any]]:
        outputs, scores = [], []
        for epoch in range(self.settings.epochs):
            services = self.services(record, epoch)
            transcript = item.solve(services)
            record.messages = transcript.messages
            outputs.append(transcript.output)
            scores.append(item.score(transcript, services))
        return outputs, scores

    def evaluate(self, item: EvalItem, node: pytest.Item) -> ItemRecord:
        """Solve the item with the model, score it, and stash the record on the node for the reporter."""
        record = ItemRecord(item.benchmark, item.task, item.category, item.item_id, node.nodeid, item.tags)
        record.reference = item.reference
        node.stash[RECORD_KEY] = record
        if self._ahead and (ahead := self._ahead.pop(_dialogue_key(item), None)) is not None:
            wait([ahead])  # this item's answers (or its dialogue's), from the prefetch
        try:
            if (done := self._prefetched.pop(record.key, None)) is not None:
                prefetched, outputs, scores = done
                _take_prefetched(record, prefetched)
            elif (failed := self._prefetch_failed.pop(record.key, None)) is not None:
                _take_prefetched(record, failed[0])
                raise failed[1]
            else:
                outputs, scores = self._solve_and_score(item, record)
        except ModelCallError as exc:
            record.error = {"kind": exc.kind, "message": str(exc)}
            raise ItemFailed(f"{item.benchmark} {item.task} {item.item_id}: {exc}") from None
        except DataFileError as exc:
            record.error = {"kind": "data", "message": str(exc)}
            raise ItemFailed(f"data error: {exc}") from None
        except Exception as exc:
            record.error = {"kind": "harness", "message": mask(f"{type(exc).__name__}: {exc}")}
            raise
        record.output, record.epoch_outputs = outputs[0], outputs if len(outputs) > 1 else []
        record.parsed = scores[-1].parsed
        record.aggregation = scores[0].aggregation
        record.passed = all(score.passed for score in scores)
        record.pass_rule = next((score.rule for score in scores if not score.passed), scores[-1].rule)
        record.unscorable = any(score.unscorable for score in scores)
        record.scores = _mean_scores([score.scores for score in scores])
        record.counts = {k: sum(s.counts.get(k, 0.0) for s in scores) for k in scores[0].counts}
        return record

    # -- controller: collect and report ----------------------------------------------------------

    def collect(self, record: ItemRecord) -> None:
        self.records[record.key] = record
        if self._samples is not None:
            self._samples.write(record)

    def note_missing(self, missing: list[ItemRecord]) -> None:
        """List the selected items that produced no record in the samples file (``"missing": true``);
        with no record at all, the earlier samples file is left as it was."""
        if self._samples is not None and self.records:
            for record in missing:
                self._samples.write(record, missing=True)

    def close(self) -> None:
        if self._samples is not None:
            self._samples.close()
        if self._cache is not None:
            self._cache.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def evidence_source(self) -> str:
        """How the judges get evidence: none, the built-in BM25 folder, or user hook implementations."""
        if self.settings.evidence_dir:
            return f"bm25:{self.settings.evidence_dir}"
        users = [impl.plugin_name for impl in self._hook.pytest_medbench_evidence.get_hookimpls()]
        return f"hook:{','.join(users)}" if users else "none"

    def absent_meds_tasks(self) -> dict[str, str]:
        """MedS-Bench tasks with no file in the data directory, so they are never silently absent."""
        from .data.meds_tasks import absent_tasks

        present = {path.name.split("_")[0] for path in meds_task_files(self.settings.data_dir)}
        return absent_tasks(present)


def _declared_tasks(config: pytest.Config) -> tuple[Any, Path | None]:
    """pyproject's task declarations (checked now: a bad one is a usage error before any item runs)
    and its ``tasks_dir`` (relative to the rootdir)."""
    from .data.declared import DeclarationError, Declarations
    from .options import pyproject_table

    table = pyproject_table(config)
    rootdir = Path(str(config.rootpath))
    try:
        declarations = Declarations(table.get("tasks", {}), rootdir / "pyproject.toml")
    except DeclarationError as exc:
        raise pytest.UsageError(str(exc)) from None
    tasks_dir = table.get("tasks_dir")
    if tasks_dir is None:
        return declarations, None
    folder = rootdir / str(tasks_dir)
    if not folder.is_dir():
        where = rootdir / "pyproject.toml"
        raise pytest.UsageError(f"{where}: [tool.medbench] tasks_dir {folder}: no such directory")
    return declarations, folder


def _benchmark_of(path: Path, data_dir: Path) -> str:
    """Which benchmark a file that failed to load reports under: meds for the MedS-Bench folder's
    task files, else the user's own tasks."""
    inside = path.resolve().is_relative_to((data_dir / MEDS_DIR).resolve())
    return "meds" if inside and path.name.startswith("task") else DEFAULT_BENCHMARK


def _router_groups(settings: Settings) -> dict:
    """The ``--model-router`` file's model groups (none without the option)."""
    if settings.router_path is None:
        return {}
    from .models.router import RouterFileError, load_router

    if settings.api_base:
        raise pytest.UsageError("--api-base and --model-router: the router file gives each api_base")
    try:
        return load_router(settings.router_path)
    except RouterFileError as exc:
        raise pytest.UsageError(f"--model-router: {exc}") from None


def _take_prefetched(record: ItemRecord, prefetched: ItemRecord) -> None:
    """What the prefetch metered for an item, into the test's record: the same as a sequential run's."""
    record.messages, record.usage = prefetched.messages, prefetched.usage
    record.judge_usage, record.provenance = prefetched.judge_usage, prefetched.provenance
    record.finish_reason, record.truncated = prefetched.finish_reason, prefetched.truncated
    record.no_content = prefetched.no_content


def _register_secrets(settings: Settings, groups: dict) -> None:
    """Every key and URL password the run resolves, so that no output ever shows one."""
    from .models import secrets

    judge_urls = [split_judge(judge)[1] for judge in settings.judge_models]  # MODEL@URL of a jury
    for url in (settings.api_base, settings.judge_api_base, *judge_urls):
        secrets.register_url(url)
    for group in groups.values():
        for endpoint in group.endpoints:
            secrets.register(endpoint.api_key)
            secrets.register_url(endpoint.api_base)


def _routed_model(settings: Settings, groups: dict) -> str:
    """--model, which must name a group when a router file is given (its only group by default)."""
    if not groups or settings.model in groups:
        return settings.model
    if settings.model == DEFAULT_MODEL and len(groups) == 1:
        return next(iter(groups))
    raise pytest.UsageError(
        f"--model {settings.model}: not a model_name in {settings.router_path} "
        f"(it has: {', '.join(sorted(groups))})"
    )


def _dialogue_key(item: EvalItem) -> tuple[str, ...]:
    """The two settings of one MedR-Bench dialogue share a key (they share the conversation); every
    other item has its own."""
    from .items.medr import DIALOGUE_MODE

    mode = DIALOGUE_MODE.get(item.task)
    return (item.item_id, mode) if mode else (item.benchmark, item.task, item.item_id)


def _add_usage(usage: Usage, completion: Any, payer: str, run_id: str, reused: bool) -> None:
    """A call made for this item in this run counts in full, even when another worker's prefetch
    made it and it is read here from the cache. An answer another item of this run was given (the
    conversation two MedR-Bench settings share: ``reused``, or read from the cache another worker
    filled) is reused, not called again; any other answer, from an earlier run, is a cache hit."""
    if reused or (completion.paid_by != payer and completion.run_id == run_id):
        usage.reused += 1
        return
    usage.calls += 1
    if completion.paid_by != payer:
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
