"""pytest entry point (``pytest11``). Light on purpose: nothing heavy is imported at plugin load.

Each process builds one Run in ``pytest_configure``. Items are parametrized from the data; each
item's record travels on ``report.user_properties`` (so it crosses xdist's wire), and only the
controller's Reporter (``reporter.py``) turns records into the samples, leaderboard and verdict.
"""

from __future__ import annotations

import functools
import gc
import importlib
import sys
from typing import TYPE_CHECKING, Any

import pytest

from .options import add_gate_options, add_options

if TYPE_CHECKING:  # for annotations only: the plugin imports nothing heavy at load
    from .custom import JudgeFixture, ModelFixture
    from .report.records import ItemRecord

RUN_KEY = pytest.StashKey["Any"]()
SETTINGS = (
    "oracle_diagnosis",
    "exam_1turn",
    "diagnosis_1turn",
    "exam_free_turn",
    "diagnosis_free_turn",
    "treatment",
)


@functools.cache
def _module(name: str) -> Any:
    """``pytest_medbench.<name>``, imported on first use rather than at plugin load. The per-item
    hooks below use it instead of a relative import in their body, which costs 1 us a call (CPython
    checks the package against ``__spec__.parent``, a Python property, each time)."""
    return importlib.import_module(f"{__package__}.{name}")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    add_gate_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    from .data.meds_tasks import CATEGORIES
    from .options import Settings
    from .run import Run

    # the garbage collector's freeze (see pytest_sessionfinish). A run inside another's test (an
    # in-process pytester run) freezes nothing: its freeze would take the outer run's objects too.
    # The thaw is registered before pytest's own check for unraisable exceptions (its plugin's
    # pytest_configure runs after this one), so it runs after that check's garbage collections.
    nested, process_ends = _place_of_run(config)
    config.stash[NESTED_KEY] = nested
    leave_frozen = nested or process_ends or gc.get_freeze_count() > 0
    config.add_cleanup(functools.partial(_thaw, leave_frozen))

    for name in ("meds", "medr", "rare", *CATEGORIES, *SETTINGS):
        config.addinivalue_line("markers", f"{name}: pytest-medbench items of {name}")
    # litellm's pydantic models warn about typing details on first use; nothing a user can act on.
    config.addinivalue_line("filterwarnings", "ignore:.*ReadOnly. qualifier:UserWarning")
    settings = Settings.from_config(config)
    is_controller = not hasattr(config, "workerinput")
    run = Run(settings, config, is_controller=is_controller)
    if settings.data_dir_explicit:
        run.check_data_dir()
    if is_controller:
        run.check_models()
        run.check_cache()
        _check_gate_paths(run)
        if not config.option.collectonly:
            _check_keys(run)
    if settings.prompts == "upstream":
        try:
            run.prompts  # noqa: B018 - fails now, with a usage error, when the template files are missing
        except FileNotFoundError as exc:
            raise pytest.UsageError(f"--medbench-prompts upstream: {exc}") from None
    if settings.evidence_dir:
        from .judge.evidence import BM25Evidence

        if not settings.evidence_dir.is_dir():
            raise pytest.UsageError(f"--medbench-evidence-dir {settings.evidence_dir}: no such directory")
        config.pluginmanager.register(BM25Evidence(settings.evidence_dir), "medbench-bm25-evidence")
    config.stash[RUN_KEY] = run
    if is_controller:
        from .reporter import Reporter

        config.pluginmanager.register(Reporter(run), "medbench-reporter")


def _check_gate_paths(run: Any) -> None:
    """A gate on an entry the data does not make is a usage error before any model call."""
    from .report.gates import GateError, check_selected

    if run.settings.gates:
        try:
            check_selected(run.settings.gates, [*run.meds_items, *run.medr_items])
        except GateError as exc:
            raise pytest.UsageError(str(exc)) from None


def _check_keys(run: Any) -> None:
    """A hosted model whose key is not set stops the run now, naming the variable (exit 2)."""
    from .models.credentials import unset_key

    if (problem := unset_key(run.settings, run.model, run.groups)) is not None:
        pytest.exit(f"{problem}; no item was run", returncode=pytest.ExitCode.INTERRUPTED)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()
    reporter = config.pluginmanager.get_plugin("medbench-reporter")
    if reporter is not None:
        reporter.write_verdict_line(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Once the tests have run, before the report is built: one full garbage collection, then what
    survives it (every module, report, record and loaded instance) is moved out of the collector's
    sight (see ``_thaw`` for when it comes back). Without it the collector walks all of it again
    while the leaderboard is built, and five times more in pytest's last act (its check for
    unraisable exceptions): one pass is 0.07 s after the 99 bundled items (scipy, nltk and pytest's
    plugins loaded), 0.1 s after 4,000 items, 0.25 s after 15,000. This collection is the first of
    those, so whatever it finalizes is still reported."""
    if session.config.stash.get(NESTED_KEY, True):
        return
    gc.collect()
    gc.freeze()


def _thaw(leave_frozen: bool) -> None:
    """pytest's last collections are over. Where the process goes on after this run (a program's
    ``pytest.main()``), what was frozen goes back to the collector, so nothing is kept that could
    not be freed. Left frozen: where the process ends with the run (the ``pytest`` command, an xdist
    worker), since given back, the interpreter's own last collection would walk and free it all on
    the way out (15,000 items: 1.9 s; the 99 bundled items: 0.14-0.30 s); where someone else froze before
    the run (theirs and ours stay); and in a run inside another's test, which froze nothing."""
    if not leave_frozen:
        gc.unfreeze()


NESTED_KEY = pytest.StashKey[bool]()


def _place_of_run(config: pytest.Config) -> tuple[bool, bool]:
    """(whether this run is inside another's test, whether the process ends with this run). Nested:
    a test of another run is running, or ``pytest.main()`` is on the stack twice (an in-process
    pytester run). The process ends with the run of an xdist worker, and with that of pytest's own
    command (``pytest.console_main`` calls ``pytest.main``, then the interpreter exits)."""
    main_calls, command = 0, False
    frame = sys._getframe()
    while frame is not None:
        main_calls += frame.f_code is pytest.main.__code__
        command = command or frame.f_code is pytest.console_main.__code__
        frame = frame.f_back
    nested = bool(_RUNNING) or main_calls > 1
    return nested, not nested and (command or hasattr(config, "workerinput"))


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash[RUN_KEY]
    model = run.model.name + (" (built-in)" if run.model.builtin else "")
    if run.model.litellm_model != run.model.name and not run.model.builtin:
        model += f" = {run.model.litellm_model}"
    if run.model.group is not None:
        model += f" over {len(run.model.group.endpoints)} deployments ({run.settings.router_path})"
    judge = ", ".join(run.settings.judge_models) or "offline judge (approximate)"
    cache = run.settings.cache_path or "off"
    return [
        f"medbench: model {model}; judge {judge}",
        f"medbench: data {run.settings.data_dir}; cache {cache}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sources = {
        "meds_item": ("meds_items", "meds-bench", "MedS-Bench task files"),
        "medr_item": ("medr_items", "medrbench", "MedR-Bench case files"),
    }
    for fixture, (source, folder, what) in sources.items():
        if fixture not in metafunc.fixturenames:
            continue
        run = metafunc.config.stash[RUN_KEY]
        items = getattr(run, source)
        names = {marker for item in items for marker in item.markers}
        _register_markers(metafunc.config, names)
        marks = {name: getattr(pytest.mark, name) for name in names}  # once per name, not per item
        params = [
            pytest.param(item, id=item.param_id, marks=[marks[m] for m in item.markers]) for item in items
        ]
        if not params:  # say why there is nothing to run, rather than pytest's "empty parameter set"
            reason = f"no {what} under {run.settings.data_dir / folder}"
            params = [pytest.param(None, id="no-data", marks=pytest.mark.skip(reason=reason))]
        metafunc.parametrize(fixture, params)


def _register_markers(config: pytest.Config, names: set[str]) -> None:
    """Register data-derived markers (body systems, disorders) so -m and --strict-markers accept them."""
    known = {line.split(":")[0].strip() for line in config.getini("markers")}
    for name in sorted(names - known):
        config.addinivalue_line("markers", f"{name}: pytest-medbench items tagged {name}")


FREEZE_AT = 1_000  # items collected from which they are frozen as soon as they are: see below


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """A big run's items and data live until the process ends: move them out of the garbage
    collector's sight, so its full passes (pytest makes five at the end) do not walk them all again
    (bench/real_size.py, 35,000 items: 5.5 s of CPU to collect, 3.7 s with this), nor do the full
    passes its allocations set off while the tests run (4,000 items: about 0.1 s each). Given back
    to the collector with the rest, where the process goes on after the run (``_thaw``)."""
    if len(session.items) >= FREEZE_AT and not session.config.stash.get(NESTED_KEY, True):
        gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """Where this process will answer items ahead of its tests, the HTTP process starts now: its
    0.18 s of imports run on the other core while pytest collects (0.2 s for 4,000 items), rather
    than before the first call. Not under --collect-only, nor on an xdist controller (its workers
    run the items, and keep no HTTP process)."""
    config = session.config
    if not config.option.collectonly and getattr(config.option, "dist", "no") == "no":
        config.stash[RUN_KEY].start_http_process()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, on the controller: tell each worker which scratch cache file they share, if any."""
    path = node.config.stash[RUN_KEY].worker_cache_path()
    if path is not None:
        node.workerinput["medbench_cache"] = str(path)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Any:
    """With --medbench-concurrency N, answer this process's items N at a time while the tests run
    (under -n, in each worker: the xdist controller collects no items and runs no test)."""
    run = session.config.stash[RUN_KEY]
    if run.settings.concurrency <= 1 or session.config.option.collectonly or run.model.builtin:
        return (yield)
    params = [getattr(item, "callspec", None) for item in session.items]
    items = [p.params.get("meds_item") or p.params.get("medr_item") for p in params if p is not None]
    run.prefetch([item for item in items if item is not None])
    try:
        return (yield)
    finally:
        run.stop_prefetch()


# model errors after which no later item can get an answer: the run stops (exit 2) rather than fail them
# all. A connection error stops it only when the host is unreachable, not when a connection dropped.
STOPS_THE_RUN = ("auth", "quota")
UNREACHABLE = (
    "Connection refused",
    "Name or service not known",
    "Temporary failure in name resolution",
    "nodename nor servname",
    "No route to host",
)


class Evaluator:
    """What the ``medbench`` fixture gives a test: ``evaluate(item)`` -> the item's record, and
    ``record(task, scores, ...)`` for a test of your own (see ``custom.py``)."""

    def __init__(self, run: Any, node: pytest.Item) -> None:
        self._run, self._node = run, node

    def __repr__(self) -> str:
        return f"<medbench evaluator for {self._run.model.name}>"

    def evaluate(self, item: Any) -> Any:
        scheduler = _module("run.scheduler")
        try:
            return self._run.evaluate(item, self._node)
        except scheduler.ItemFailed as exc:
            message = str(exc)  # failed below, outside this block, so pytest shows it once, unchained
        error = self._node.stash[scheduler.RECORD_KEY].error or {}
        unreachable = error.get("kind") == "connection" and any(m in error["message"] for m in UNREACHABLE)
        if error.get("kind") in STOPS_THE_RUN or unreachable:
            self._node.session.shouldstop = self._stop_reason(error["kind"])
        pytest.fail(message, pytrace=False)

    def _stop_reason(self, kind: str) -> str:
        """Why the run stops after this item: no later item could get an answer either."""
        from .models.secrets import without_userinfo

        where = f" at {without_userinfo(self._run.model.api_base)}" if self._run.model.api_base else ""
        what = "cannot be reached" if kind == "connection" else f"refused the calls ({kind})"
        return f"medbench: the model {self._run.model.name}{where} {what}; the other items were not run"

    def record(
        self,
        task: str,
        scores: dict[str, Any],
        passed: bool | None = None,
        benchmark: str = "custom",
        **tags: Any,
    ) -> ItemRecord:
        """Put this test's ``scores`` (0-1 each) in the leaderboard as one item of ``benchmark.task``;
        ``passed`` None: the test's own outcome."""
        from .custom import own_test, record_scores

        return record_scores(own_test(self._run, self._node), task, scores, passed, benchmark, tags)


# The items whose protocol is running, innermost last (a pytester run inside a test nests one): the
# medbench fixture's node. The fixture takes no ``request``: pytest 9 builds a RequestFixtureDef
# (inspect.signature included) for each of the three times one item asks for ``request``: about 25 us
# an item (5,000 trivial tests), where this costs one hook wrapper.
_RUNNING: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


@pytest.fixture
def medbench() -> Evaluator:
    """Evaluate benchmark items against the configured model."""
    node = _RUNNING[-1]  # a function-scoped fixture is only set up inside its test's protocol
    return Evaluator(node.config.stash[RUN_KEY], node)


@pytest.fixture
def medbench_model(request: pytest.FixtureRequest) -> ModelFixture:
    """The run's model (--model, aliases, router, cache, retries, rate limits): ``.complete(prompt)``."""
    from .custom import ModelFixture, own_test

    return ModelFixture(own_test(request.config.stash[RUN_KEY], request.node))


@pytest.fixture
def medbench_judge(request: pytest.FixtureRequest) -> JudgeFixture:
    """The run's judge or jury (offline judge without --judge-model): ``.verdict(answer, reference)``."""
    from .custom import JudgeFixture, own_test

    return JudgeFixture(own_test(request.config.stash[RUN_KEY], request.node))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.failed:
        from .models.secrets import mask

        text = str(report.longrepr)
        if mask(text) != text:  # a traceback or message that shows a key: terminal and junit get it masked
            report.longrepr = mask(text)
    if call.when == "call":
        record = item.stash.get(_module("run.scheduler").RECORD_KEY, None)
        if record is not None:
            if record.passed is None:  # medbench.record(passed=None): the test's outcome decides
                record.passed = call.excinfo is None
            value = record.to_property(crosses_wire=hasattr(item.config, "workerinput"))
            report.user_properties.append((_module("report.records").USER_PROPERTY, value))
            # flat scores on the item reach the teardown report, which is what --junitxml writes out
            item.user_properties += [
                ("medbench.task", f"{record.benchmark}.{record.task}"),
                ("medbench.passed", record.passed),
            ]
            item.user_properties += [(f"medbench.{name}", value) for name, value in record.scores.items()]
            if record.error:
                item.user_properties.append(("medbench.error", record.error["kind"]))
    return report
