"""The controller-only Reporter: records from every worker -> samples file, leaderboard, summary
table, and, when gates or a baseline are given, the deployment verdict that sets the exit code."""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest

from .report.completeness import Completeness
from .report.records import USER_PROPERTY, ItemRecord
from .utf8 import ERRORS

# failures that are not the model's (a crash: the worker died on the item): they always fail a gated run
HARNESS_ERRORS = ("data", "harness", "crash")


class Reporter:
    def __init__(self, run: Any, baseline: dict | None = None) -> None:
        self.run = run
        self.baseline = baseline  # the --medbench-baseline leaderboard, read when the run began
        self._leaderboard: dict | None = None
        self.verdict: Any = None
        self.verdict_line: str | None = None
        self.other_failures = 0  # failed reports that carry no medbench record (setup errors, other tests)
        self.progress: Any = None
        self._terminal: Any = None  # pytest's terminal reporter, when progress lines are shown
        self.completeness = Completeness(functools.cache(self._items_by_param))
        self.unrun: list[str] = []  # node ids of the selected items that never ran, whatever the test
        self.missing: list[ItemRecord] = []  # the benchmark items among them, for the samples file

    def _items_by_param(self) -> dict[str, Any]:
        return {item.param_id: item for item in (*self.run.meds_items, *self.run.medr_items)}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        config = session.config
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        mode = self.run.settings.progress
        wanted = mode == "on" or (
            mode == "auto" and terminal is not None and terminal.isatty and config.option.verbose >= 0
        )
        if wanted and terminal is not None:
            from .report.progress import Progress

            self.progress = Progress()
            self._terminal = terminal

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.completeness.select(item.nodeid for item in session.items)
        if self.progress is not None:
            self.progress.total = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.completeness.select(ids)
        if self.progress is not None:
            self.progress.total = len(ids)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        """xdist, on the controller: the item a worker died on is that item's error, never missing."""
        error = {"kind": "crash", "message": str(report.longrepr)}
        record = self.completeness.record_for(crashitem, error=error)
        if record is not None:
            report.user_properties.append((USER_PROPERTY, record.to_dict()))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when in ("teardown", "???"):  # "???": xdist's report of an item its worker died on
            self.completeness.finish(report.nodeid)
        records = [value for name, value in report.user_properties if name == USER_PROPERTY]
        if report.failed and not records:
            self.other_failures += 1
        for value in records:
            record = ItemRecord.from_property(value)
            self.run.collect(record)
            if self.progress is not None:
                self.progress.record(record)
        if self.progress is not None and report.when == "teardown":
            self.progress.item_finished()

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self) -> None:
        """After pytest's own output for the item: an owed progress line goes where pytest's line is
        whole. Under -v every item's line is whole (pytest starts the next with a newline); in the dot
        layout only right after a line ends in ``[ NN%]``, so the dots are never split."""
        if self.progress is None or not self.progress.due:
            return
        writer = self._terminal.config.get_terminal_writer()
        if self._terminal.showlongtestinfo:
            writer.line()
            writer.write(self.progress.take_line(), flush=True)
        elif writer.width_of_current_line == 0:
            writer.line(self.progress.take_line())

    def leaderboard(self) -> dict | None:
        if self._leaderboard is None and self.run.records:
            from .metadata import run_metadata
            from .report import leaderboard
            from .report.provenance import cache_section

            metadata = {
                **run_metadata(self.run),
                "complete": not self.unrun,
                "missing": len(self.unrun),
                "cache": cache_section(self.run.records.values(), self.run.run_id),
            }
            # in collection order, not arrival order: under -n (or with answers arriving as they
            # come) arrival varies, and the seeded bootstrap's interval depends on the order
            order = {nodeid: number for number, nodeid in enumerate(self.completeness.selected)}
            records = sorted(self.run.records.values(), key=lambda r: order.get(r.nodeid, len(order)))
            self._leaderboard = leaderboard.build(metadata, records, self._audits(records))
        return self._leaderboard

    def _audits(self, records: list[ItemRecord]) -> dict[tuple[str, str], dict]:
        """The data audit of every task the run scored, from the run's items (loaded here on an
        xdist controller, which collects none)."""
        from .report.audit import audit_by_task

        wanted = {(record.benchmark, record.task) for record in records}
        benchmarks = {benchmark for benchmark, _ in wanted}
        items = [
            *(self.run.meds_items if benchmarks - {"medr"} else ()),  # MedS-format: meds and declared
            *(self.run.medr_items if "medr" in benchmarks else ()),
        ]
        return audit_by_task(items, wanted, generation_baseline=False)

    def incomplete_line(self) -> str | None:
        """ "INCOMPLETE: 43 of 99 items" (43 of the 99 selected items ran) when any did not, else None."""
        if not self.unrun:
            return None
        total = len(self.completeness.selected)
        listed = ""
        if self.run.settings.samples_path and self.missing:
            some = "" if len(self.missing) == len(self.unrun) else f"{len(self.missing)} of "
            listed = f" (the samples file lists {some}the missing ids)"
        return f"INCOMPLETE: {total - len(self.unrun)} of {total} items{listed}"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        settings = self.run.settings
        if not session.config.option.collectonly:
            self.unrun = self.completeness.unfinished()
            self.missing = self.completeness.missing(self.unrun)
            self.run.note_missing(self.missing)
        board = self.leaderboard()
        if settings.report_path is not None and board is not None:
            from .report import leaderboard

            leaderboard.write(settings.report_path, board)
        if settings.html_path is not None and board is not None:
            from .models.secrets import mask
            from .report.html import render

            samples = [record.to_dict() for record in self.run.records.values()]
            settings.html_path.parent.mkdir(parents=True, exist_ok=True)
            page = mask(render([("this run", board)], samples))
            settings.html_path.write_text(page, encoding="utf-8", errors=ERRORS)
        if settings.judged_by_verdict:
            session.exitstatus = self._judge(session.exitstatus, board)

    def _judge(self, exitstatus: int, board: dict | None) -> int:
        """The exit status of a gated run: the verdict, unless pytest itself could not run properly."""
        from .report.compare import CompareError, compare_runs
        from .report.gates import GateError, check
        from .report.verdict import Verdict

        # pytest's own failure to run wins the exit code, but the verdict line still says what happened
        broken_run = exitstatus in (
            pytest.ExitCode.INTERRUPTED,
            pytest.ExitCode.INTERNAL_ERROR,
            pytest.ExitCode.USAGE_ERROR,
        )
        settings = self.run.settings
        try:
            if board is None:
                raise GateError("no medbench item produced a result, so there is nothing to gate on")
            comparisons, not_compared = [], []
            if self.baseline is not None:
                comparisons, not_compared = compare_runs(self.baseline, board, settings.alpha)
            self.verdict = Verdict(
                check(list(settings.gates), board),
                comparisons,
                settings.max_drop,
                settings.alpha,
                str(settings.baseline_path or "") or None,
                not_compared=not_compared,
            )
        except (GateError, CompareError) as exc:
            if (incomplete := self.incomplete_line()) is not None:  # a gate on what never ran
                self.verdict_line = f"medbench verdict: FAIL: {incomplete}; {exc}"
                return exitstatus if broken_run else pytest.ExitCode.TESTS_FAILED
            self.verdict_line = f"medbench verdict: ERROR: {exc}"
            return exitstatus if broken_run else pytest.ExitCode.USAGE_ERROR
        broken = [r for r in self.run.records.values() if r.error and r.error["kind"] in HARNESS_ERRORS]
        if broken:
            self.verdict.problems.append(f"{len(broken)} items failed on data or harness errors")
        if self.other_failures:
            self.verdict.problems.append(f"{self.other_failures} failures outside the benchmark items")
        if (incomplete := self.incomplete_line()) is not None:
            self.verdict.problems.append(incomplete)
        self.verdict_line = self.verdict.line()
        _github_summary(self.verdict.markdown(board["categories"]))
        return exitstatus if broken_run else self.verdict.exit_code

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Any:
        """Wraps pytest's own summary, so the table comes after its short summary of failures: the
        scores are what the reader looks for last, not 78 FAILED lines."""
        if self.progress is not None and self.progress.due:  # the last line, after pytest's [100%]
            writer = terminalreporter.config.get_terminal_writer()
            if writer.width_of_current_line:
                writer.line()
            writer.line(self.progress.take_line())
        result = yield
        self._write_summary(terminalreporter)
        return result

    def _write_summary(self, terminalreporter: Any) -> None:
        board = self.leaderboard()
        if board is None:
            return
        from .report.terminal import summary_lines

        terminalreporter.section("medbench summary")
        if (incomplete := self.incomplete_line()) is not None:
            terminalreporter.write_line(incomplete, red=True, bold=True)
        for line in self._reuse_warnings(board):
            terminalreporter.write_line(line, yellow=True, bold=True)
        self._write_data_notes(terminalreporter)
        for line in summary_lines(board, per_task=terminalreporter.config.get_verbosity() > 0):
            terminalreporter.write_line(line)
        for result in self.verdict.gates if self.verdict is not None else ():
            verdict = "holds" if result.passed else "FAILS"
            terminalreporter.write_line(f"gate {result.describe()}: {verdict}", red=not result.passed)
        settings = self.run.settings
        for what, path in (
            ("leaderboard", settings.report_path),
            ("HTML page", settings.html_path),
            ("samples", settings.samples_path),
        ):
            if path is not None:
                terminalreporter.write_line(f"{what} written to {path}")
        if settings.report_path is None and settings.html_path is None:
            terminalreporter.write_line(
                "hint: --medbench-report run.json writes the leaderboard, --medbench-html run.html a page"
            )
        if self.verdict is not None and (self.verdict.comparisons or self.verdict.not_compared):
            from .report.compare import table

            terminalreporter.section("medbench comparison with the baseline")
            verdict = self.verdict
            for line in table(verdict.comparisons, verdict.max_drop, verdict.alpha, verdict.not_compared):
                terminalreporter.write_line(line)

    def write_verdict_line(self, config: pytest.Config) -> None:
        """The run's last line: the verdict that matches the exit code."""
        if self.verdict_line is None:
            return
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(self.verdict_line, bold=True, red=not self.verdict_line.endswith(")"))

    def _reuse_warnings(self, board: dict) -> list[str]:
        from .models.secrets import without_userinfo
        from .report.provenance import reuse_warnings

        model = self.run.model
        endpoints = model.group.endpoints if model.group is not None else [model]
        return reuse_warnings(board["run"]["cache"], {without_userinfo(e.api_base) for e in endpoints})

    def _write_data_notes(self, terminalreporter: Any) -> None:
        """Say which benchmark data the run did not find, so nothing is silently absent."""
        from .data.files import MEDR_DIR, MEDS_DIR

        data_dir = self.run.settings.data_dir
        for folder, benchmark in ((MEDS_DIR, "MedS-Bench"), (MEDR_DIR, "MedR-Bench")):
            if not (data_dir / folder).is_dir():
                terminalreporter.write_line(f"{data_dir} has no {folder}/ folder, so no {benchmark} items")
        selected = {record.benchmark for record in self.run.records.values()}
        absent = self.run.absent_meds_tasks() if "meds" in selected else {}
        if (data_dir / MEDS_DIR).is_dir() and absent:
            gated = sum("PhysioNet" in reason for reason in absent.values())
            where = "the leaderboard's" if self.run.settings.report_path else "--medbench-report's"
            terminalreporter.write_line(
                f"{len(absent)} MedS-Bench tasks absent from the data ({gated} PhysioNet-gated MIMIC tasks "
                f"need a local copy): listed in {where} run.meds_tasks_absent"
            )


def _github_summary(markdown: str) -> None:
    """Append to the GitHub Actions job summary when running there."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
