"""pytest entry point (``pytest11``). Light on purpose: nothing heavy is imported at plugin load.

Each process builds one Run in ``pytest_configure``. Items are parametrized from the data; each
item's record travels on ``report.user_properties`` (so it crosses xdist's wire), and only the
controller's Reporter (``reporter.py``) turns records into the samples, leaderboard and verdict.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

import pytest

from . import gc_freeze
from .options import add_gate_options, add_options, shown_judge

if TYPE_CHECKING:  # for annotations only: the plugin imports nothing heavy at load
    from .custom import JudgeFixture, ModelFixture
    from .evaluator import Evaluator

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

    gc_freeze.prepare(config, inside_a_test=bool(_RUNNING))
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
        baseline = _read_baseline(run)
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

        config.pluginmanager.register(Reporter(run, baseline), "medbench-reporter")


def _check_gate_paths(run: Any) -> None:
    """A gate on an entry the data does not make is a usage error before any model call."""
    from .report.gates import GateError, check_selected

    if run.settings.gates:
        try:
            check_selected(run.settings.gates, [*run.meds_items, *run.medr_items])
        except GateError as exc:
            raise pytest.UsageError(str(exc)) from None


def _read_baseline(run: Any) -> dict | None:
    """The --medbench-baseline leaderboard, read once, now: one that cannot be read, is not a
    leaderboard, or is of another schema is a usage error before any model call, not after the run."""
    if (path := run.settings.baseline_path) is None:
        return None
    from .report.compare import CompareError, check_comparable, read_leaderboard  # numpy: only here

    try:
        baseline = read_leaderboard(path, "the baseline ")
        check_comparable(baseline)
    except CompareError as exc:
        raise pytest.UsageError(f"--medbench-baseline: {exc}") from None
    return baseline


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


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    gc_freeze.after_collection(session)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    gc_freeze.before_report(session)


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash[RUN_KEY]
    model = run.model.name + (" (built-in)" if run.model.builtin else "")
    if run.model.litellm_model != run.model.name and not run.model.builtin:
        model += f" = {run.model.litellm_model}"
    if run.model.group is not None:
        model += f" over {len(run.model.group.endpoints)} deployments ({run.settings.router_path})"
    judge = ", ".join(map(shown_judge, run.settings.judge_models)) or "offline judge (approximate)"
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
    """xdist, on the controller: tell each worker the run's id (the report tells this run's answers
    from an earlier run's by it) and which scratch cache file they share, if any."""
    run = node.config.stash[RUN_KEY]
    node.workerinput["medbench_run_id"] = run.run_id
    path = run.worker_cache_path()
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
    return _module("evaluator").Evaluator(node.config.stash[RUN_KEY], node)


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
        skipped = report.skipped and not hasattr(report, "wasxfail")
        if record is not None and record.passed is None and skipped:
            record = None  # medbench.record(passed=None), then pytest.skip: no item, as for any skip
        if record is not None:
            if record.passed is None:  # medbench.record(passed=None): the test's outcome decides (an
                record.passed = report.passed  # xfail failed; a strict xpass is a failed test)
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
