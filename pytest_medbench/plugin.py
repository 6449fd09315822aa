"""pytest entry point (``pytest11``). Light on purpose: nothing heavy is imported at plugin load.

Each process builds one Run in ``pytest_configure``. Items are parametrized from the data; each
item's record travels on ``report.user_properties`` (so it crosses xdist's wire), and only the
controller collects records into the samples file, the leaderboard and the summary table.
"""

from __future__ import annotations

from typing import Any

import pytest

from .options import add_options

RUN_KEY = pytest.StashKey["Any"]()
SETTINGS = (
    "oracle_diagnosis",
    "exam_1turn",
    "diagnosis_1turn",
    "exam_free_turn",
    "diagnosis_free_turn",
    "treatment",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    from .data.meds_tasks import CATEGORIES
    from .options import Settings
    from .run import Run

    for name in ("meds", "medr", "rare", *CATEGORIES, *SETTINGS):
        config.addinivalue_line("markers", f"{name}: pytest-medbench items of {name}")
    # litellm's pydantic models warn about typing details on first use; nothing a user can act on.
    config.addinivalue_line("filterwarnings", "ignore:.*ReadOnly. qualifier:UserWarning")
    settings = Settings.from_config(config)
    is_controller = not hasattr(config, "workerinput")
    run = Run(settings, config, is_controller=is_controller)
    if settings.data_dir_explicit:
        run.check_data_dir()
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
        config.pluginmanager.register(Reporter(run), "medbench-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    run = config.stash[RUN_KEY]
    model = run.model.name + (" (built-in)" if run.model.builtin else "")
    judge = run.settings.judge_model or "offline fuzzy judge (approximate)"
    cache = run.settings.cache_path or "off"
    return [
        f"medbench: model {model}; judge {judge}",
        f"medbench: data {run.settings.data_dir}; cache {cache}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, source in (("meds_item", "meds_items"), ("medr_item", "medr_items")):
        if fixture in metafunc.fixturenames:
            items = getattr(metafunc.config.stash[RUN_KEY], source)
            _register_markers(metafunc.config, {marker for item in items for marker in item.markers})
            params = [
                pytest.param(item, id=item.param_id, marks=[getattr(pytest.mark, m) for m in item.markers])
                for item in items
            ]
            metafunc.parametrize(fixture, params)


def _register_markers(config: pytest.Config, names: set[str]) -> None:
    """Register data-derived markers (body systems, disorders) so -m and --strict-markers accept them."""
    known = {line.split(":")[0].strip() for line in config.getini("markers")}
    for name in sorted(names - known):
        config.addinivalue_line("markers", f"{name}: pytest-medbench items tagged {name}")


class Evaluator:
    """What the ``medbench`` fixture gives a test: ``evaluate(item)`` -> the item's record."""

    def __init__(self, run: Any, node: pytest.Item) -> None:
        self._run, self._node = run, node

    def __repr__(self) -> str:
        return f"<medbench evaluator for {self._run.model.name}>"

    def evaluate(self, item: Any) -> Any:
        from .run import ItemFailed

        try:
            return self._run.evaluate(item, self._node)
        except ItemFailed as exc:
            pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def medbench(request: pytest.FixtureRequest) -> Evaluator:
    """Evaluate benchmark items against the configured model."""
    return Evaluator(request.config.stash[RUN_KEY], request.node)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if call.when == "call":
        from .report.records import USER_PROPERTY
        from .run import RECORD_KEY

        record = item.stash.get(RECORD_KEY, None)
        if record is not None:
            report.user_properties.append((USER_PROPERTY, record.to_dict()))
    return report


class Reporter:
    """Controller-only: gathers records from all workers, writes the samples, leaderboard and summary."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._leaderboard: dict | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        from .report.records import USER_PROPERTY, ItemRecord

        for name, value in report.user_properties:
            if name == USER_PROPERTY:
                self.run.collect(ItemRecord.from_dict(value))

    def leaderboard(self) -> dict | None:
        if self._leaderboard is None and self.run.records:
            from .report import leaderboard

            self._leaderboard = leaderboard.build(self.run.run_metadata(), list(self.run.records.values()))
        return self._leaderboard

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self.run.settings.report_path
        board = self.leaderboard()
        if path is not None and board is not None:
            from .report import leaderboard

            leaderboard.write(path, board)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        board = self.leaderboard()
        if board is None:
            return
        from .report.terminal import summary_lines

        terminalreporter.section("medbench summary")
        self._write_data_notes(terminalreporter)
        for line in summary_lines(board):
            terminalreporter.write_line(line)
        if self.run.settings.report_path:
            terminalreporter.write_line(f"leaderboard written to {self.run.settings.report_path}")

    def _write_data_notes(self, terminalreporter: Any) -> None:
        """Say which benchmark data the run did not find, so nothing is silently absent."""
        from .data.files import MEDR_DIR, MEDS_DIR

        data_dir = self.run.settings.data_dir
        for folder, benchmark in ((MEDS_DIR, "MedS-Bench"), (MEDR_DIR, "MedR-Bench")):
            if not (data_dir / folder).is_dir():
                terminalreporter.write_line(f"{data_dir} has no {folder}/ folder, so no {benchmark} items")
        absent = self.run.absent_meds_tasks()
        if (data_dir / MEDS_DIR).is_dir() and absent:
            gated = sum("PhysioNet" in reason for reason in absent.values())
            terminalreporter.write_line(
                f"{len(absent)} MedS-Bench tasks absent from the data ({gated} PhysioNet-gated MIMIC tasks "
                "need a local copy): listed in the leaderboard's run.meds_tasks_absent"
            )
