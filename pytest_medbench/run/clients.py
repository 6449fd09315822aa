"""What a run builds from its settings to answer items: the model, judge and agent clients (sharing
one response cache and the rate limits), the MedR prompts, and the judges' evidence.

Every usage error in the model settings (an unknown model name, a bad router file, an unusable cache)
is raised here, before any item runs.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..data.files import MEDR_DIR
from ..judge.evidence import NO_EVIDENCE
from ..judge.llm import JUDGE_TEMPERATURE
from ..models.cache import ResponseCache
from ..models.client import GenerationParams, ModelClient, ModelSpec, RetryPolicy
from ..options import DEFAULT_MODEL, Settings, split_judge
from ..prompts.medr import MedrPrompts

if TYPE_CHECKING:
    from ..models.http_process import HTTPProcess


class Clients:
    """The run's clients and what its judges read (one per process; the cache file is shared)."""

    def __init__(self, settings: Settings, config: pytest.Config, run_id: str) -> None:
        self.settings = settings
        self.rootdir = Path(str(config.rootpath))
        self.groups = _router_groups(settings)
        _register_secrets(settings, self.groups)
        self.model = self._spec(_routed_model(settings, self.groups), settings.api_base)
        self.run_id = run_id
        self._config = config
        self._hook = config.hook
        self._cache: ResponseCache | None = None
        # under -n, the file every worker reads and writes answers in (see worker_cache_path)
        self._worker_input: dict = getattr(config, "workerinput", {})
        self._scratch: Path | None = None

    def check_models(self) -> None:
        """Fail before any item runs when litellm cannot route a model name (with suggestions)."""
        from ..models.aliases import UnknownModel, check_routable

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
        from ..models.cache import CacheUnusable, check_usable

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

    def worker_cache_path(self) -> Path | None:
        """For the controller to hand its -n workers: with --medbench-no-cache, a scratch file, so what
        one worker prefetched the others can read, and the two settings of a MedR-Bench dialogue
        score one conversation whichever workers run them, concurrency or not (removed at the end)."""
        if self.settings.cache_path:
            return None
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="medbench-"))
        return self._scratch / "responses.sqlite3"

    @property
    def scratch(self) -> bool:
        """Whether the cache is the controller's scratch file: it carries each item's answers from
        the prefetch to the item's test and nothing across items (see ``ItemScope``), where a cache
        file answers any request it holds."""
        return self.settings.cache_path is None and "medbench_cache" in self._worker_input

    def _new_client(
        self, spec: ModelSpec, params: GenerationParams, revision: str | None = None
    ) -> ModelClient:
        """A client sharing the run's cache; with no cache file under -n, the controller's scratch
        file carries what one worker asked for an item (or a dialogue) to the others. Every process
        claims each request in the file before asking it (xdist workers, and separate runs sharing
        one cache), so none is asked twice at once. One process with no cache file keeps none: its
        tests take the prefetched results themselves, and a request asked twice is asked twice, as
        in a sequential run. Built-in models are never cached. A lean endpoint's calls go through
        the HTTP process when this process keeps several in flight and is not an xdist worker (whose
        cores are the other workers': there the extra process costs more than it saves)."""
        if self._cache is None and not spec.builtin:
            path = self.settings.cache_path or self._worker_input.get("medbench_cache")
            if path:
                self._cache = ResponseCache(path, claims=True)
        retry = RetryPolicy(max_retries=self.settings.retries, backoff_s=self.settings.backoff_s)
        return ModelClient(
            spec,
            params,
            cache=self._cache,
            timeout_s=self.settings.timeout_s,
            retry=retry,
            run_id=self.run_id,
            revision=revision,
            http_process=self._calls_in_flight_here,
        )

    @property
    def _calls_in_flight_here(self) -> bool:
        """Whether this process keeps several calls in flight on cores of its own (see ``_new_client``)."""
        return self.settings.concurrency > 1 and not self._worker_input

    def start_http_process(self) -> None:
        """Start the HTTP process now where the model's calls will go through it (a lean endpoint,
        calls kept in flight here), rather than when the first client is made: its imports (0.18 s)
        then run on the other core while pytest collects."""
        from ..models import http_process
        from ..models.transport import Endpoint

        model = self.model  # a built-in (medbench/...) is never a lean endpoint
        endpoint = Endpoint(model.litellm_model, model.api_base)
        if self._calls_in_flight_here and model.group is None and endpoint.lean:
            http_process.shared()

    @functools.cached_property
    def client(self) -> ModelClient:
        params = GenerationParams(self.settings.temperature, self.settings.max_tokens, self.settings.seed)
        client = self._new_client(self.model, params, self.settings.model_revision)
        if (self.settings.rpm or self.settings.tpm) and not self.model.builtin:
            from ..models.ratelimit import SharedRateLimit

            # beside the cache, so every worker of the run (and a rerun within the minute) shares it
            folder = (
                self.settings.cache_path.parent
                if self.settings.cache_path
                else self.rootdir / ".medbench_cache"
            )
            # its waits end when the client stops asking (see ModelClient.stop_asking); a caller of
            # acquire() must then pass the client's stop as ``stopped``, or it would wait in a loop
            client.limit = SharedRateLimit(
                folder / "ratelimit.sqlite3", rpm=self.settings.rpm, tpm=self.settings.tpm, sleep=client.wait
            )
        return client

    @functools.cached_property
    def judge_clients(self) -> list[ModelClient]:
        """The judges answer at temperature 0, so their verdicts (and cache keys) are reproducible. A
        jury's members of one model id at different URLs (``--judge-model m@URL1 --judge-model
        m@URL2``) are keyed by their URL too: else the second would be given the first's verdicts."""
        judges = [split_judge(text) for text in self.settings.judge_models]
        clients = [self._evaluator_client(*judge) for judge in judges]
        models = Counter(client.spec.litellm_model for client in clients)
        for client in clients:
            client.endpoint_in_key = models[client.spec.litellm_model] > 1
        return clients

    @functools.cached_property
    def agent_client(self) -> ModelClient | None:
        """The agent model; as the default (the first judge), it shares that judge's API base."""
        model = self.settings.agent_model
        if not model:
            return None
        first = split_judge(self.settings.judge_models[0]) if self.settings.judge_models else None
        return self._evaluator_client(model, first[1] if first and first[0] == model else None)

    def _evaluator_client(self, model: str, api_base: str | None) -> ModelClient:
        spec = self._spec(model, api_base or self.settings.judge_api_base)
        return self._new_client(spec, GenerationParams(temperature=JUDGE_TEMPERATURE))

    def http_process_of_every_call(self) -> HTTPProcess | None:
        """The HTTP process through which every call of the run's clients goes, when there is one
        (a lean endpoint's model, judges and agent): the prefetch's tasks can then wait on it without
        a thread each (``HTTPProcess.host``)."""
        from ..models import http_process

        if all(getattr(client.transport, "in_own_process", False) for client in self._every_client()):
            return http_process.shared()
        return None

    def stop_asking(self) -> None:
        """The test loop has ended: no call of the run is made or retried after it
        (``ModelClient.stop_asking``)."""
        for client in self._every_client():
            client.stop_asking()

    def _every_client(self) -> list[ModelClient]:
        return [self.client, *self.judge_clients, *([self.agent_client] if self.agent_client else [])]

    def judge_specs(self) -> list[ModelSpec]:
        """Every judge of the run, as resolved (for the leaderboard's ``run.judge.judges``)."""
        return [client.spec for client in self.judge_clients]

    def agent_spec(self) -> ModelSpec | None:
        """The patient agent, as resolved (for ``run.judge.agent_api_base``); None: the offline agent."""
        return self.agent_client.spec if self.agent_client is not None else None

    @functools.cached_property
    def prompts(self) -> MedrPrompts:
        return MedrPrompts(self.settings.prompts, self.settings.data_dir / MEDR_DIR / "instructions")

    def evidence(self, query: str) -> str:
        """Evidence passages for the judges, from the ``pytest_medbench_evidence`` hook (or none)."""
        found = self._hook.pytest_medbench_evidence(query=query, k=3, config=self._config)
        return found or NO_EVIDENCE

    def evidence_source(self) -> str:
        """How the judges get evidence: none, the built-in BM25 folder, or user hook implementations."""
        if self.settings.evidence_dir:
            from ..judge.evidence import corpus_digest

            return f"bm25:{self.settings.evidence_dir} sha256:{corpus_digest(self.settings.evidence_dir)}"
        users = [impl.plugin_name for impl in self._hook.pytest_medbench_evidence.get_hookimpls()]
        return f"hook:{','.join(users)}" if users else "none"

    def close(self) -> None:
        """At the end of the process: the lean transport's HTTP process ended, the cache file closed,
        the -n scratch folder removed."""
        from ..models import http_process

        http_process.close_shared()
        if self._cache is not None:
            self._cache.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def _router_groups(settings: Settings) -> dict:
    """The ``--model-router`` file's model groups (none without the option)."""
    if settings.router_path is None:
        return {}
    from ..models.router import RouterFileError, load_router

    if settings.api_base:
        raise pytest.UsageError("--api-base and --model-router: the router file gives each api_base")
    try:
        return load_router(settings.router_path)
    except RouterFileError as exc:
        raise pytest.UsageError(f"--model-router: {exc}") from None


def _register_secrets(settings: Settings, groups: dict) -> None:
    """Every key and URL password the run resolves, so that no output ever shows one."""
    from ..models import secrets

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
