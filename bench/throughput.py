"""Throughput benchmark (not a test): pytest-medbench against a local server with a fixed latency.

    python bench/throughput.py [--latency 0.05] [--quick]

First, what a user waits for: the end-to-end ratio, the endpoint bound (items x latency / calls in
flight) over the whole command's wall time minus that of the same command on 1 item (start-up,
collection of the data, the report), at 32 and 64 calls in flight, in one process and under -n 2
(half the calls in flight per worker): the median of three pairs of runs, each pair's ratio beside
it. Beside them, the floor of the -n 2 rows: bare pytest-xdist on as many trivial tests. Then
MedR-Bench's free-turn dialogue with an LLM patient agent and an LLM judge (many dependent calls
per case) against its critical-path bound: the calls of one case, which follow one another,
x latency x cases / cases in flight. Then the sub-window figures,
labelled as such: items/s from the first to the last answered request as a share of the bound, at
concurrency 1 and 8 and under -n 16, with the start-up until the first model call; collection of
15,000 items; `pytest suites/` with the built-in oracle; a fully cached rerun of 15,000 items (in one
process and under -n 2); the peak RSS of the largest run.

Every pytest it times runs with PYTHONDONTWRITEBYTECODE unset, whatever this process has: a user's
Python writes bytecode, so a rerun loads the package (and pytest's rewritten plugin modules) from
it, where with the variable set every run compiles all of them again (about 1 s a run here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST = [
    sys.executable,
    "-m",
    "pytest",
    str(REPO / "suites"),
    "-q",
    "-p",
    "no:cacheprovider",
    "--medbench-progress=off",
]


def make_medr_data(root: Path, count: int) -> Path:
    """``count`` synthetic MedR-Bench diagnosis cases, each with ancillary tests to ask for."""
    folder = root / "medrbench"
    folder.mkdir(parents=True, exist_ok=True)
    summary = (
        "- **Patient Information:** woman aged 31\n- **Chief Complaint:** Racing heartbeat, case {n}\n"
        "- **Physical Examination:** Pulse 112/min, fine tremor.\n- **Ancillary Tests:**\n"
        "  - **Blood count:** haemoglobin 13.1 g/dL.\n  - **Thyroid Function:** TSH {n} suppressed."
    )  # every case's own tests, so that no judge request is the same for two cases
    cases = {
        f"PMC9{n:07d}": {
            "generate_case": {
                "case_summary": summary.format(n=n),
                "differential_diagnosis": "1. Graves disease: goitre and eye signs.",
                "final_diagnosis": "Graves disease.",
                "diagnosis_results": "Graves disease",
            },
            "body_category": ["Endocrine System"],
            "disorder_category": ["Metabolic Problems"],
            "checked_rare_disease": [],
        }
        for n in range(count)
    }
    (folder / "diagnosis_bench.json").write_text(json.dumps(cases))
    return root


def make_data(root: Path, count: int) -> Path:
    folder = root / "meds-bench" / "MCQA"
    folder.mkdir(parents=True, exist_ok=True)
    instances = [
        {
            "input": f"Question: Which number is {n}?\nOptions: A: {n}\tB: {n + 1}",
            "output": "The right answer is A: 1",
        }
        for n in range(count)
    ]
    (folder / "task57_bench.json").write_text(json.dumps({"Definition": ["Pick."], "Instances": instances}))
    return root


class Server:
    def __init__(self, latency: float, workdir: Path, *, medr: bool = False) -> None:
        self.ready, self.stamps = workdir / "ready", workdir / "stamps.json"
        self.ready.unlink(missing_ok=True)
        command = [
            sys.executable,
            str(REPO / "bench" / "latency_server.py"),
            f"--latency={latency}",
            f"--ready={self.ready}",
            f"--stamps={self.stamps}",
            *(["--medr"] if medr else []),
        ]
        self.process = subprocess.Popen(command)
        while not self.ready.exists():
            time.sleep(0.05)
        self.api_base = self.ready.read_text()

    def finish(self) -> list[float]:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return json.loads(self.stamps.read_text())


# Every timed pytest runs here, outside any checkout: ``python -m`` puts its working directory first
# on sys.path, so run from a checkout it would import that checkout's package whatever PYTHONPATH
# says (and `PYTHONPATH=<other checkout> python bench/throughput.py` would time the wrong code).
NEUTRAL_CWD = tempfile.gettempdir()


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, monotonic start) of one pytest run."""
    started = time.monotonic()
    subprocess.run(
        [*PYTEST, *args],
        env=env,
        cwd=NEUTRAL_CWD,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.monotonic() - started, started


def medr_case(label: str, cases: int, in_flight: int, latency: float, work: Path, env: dict) -> dict:
    """The free-turn settings of ``cases`` MedR-Bench cases (exam and diagnosis, one dialogue each)
    with an LLM agent and judge, against the critical-path bound: a case's calls follow one another
    (the chain), so ``cases / in_flight`` chains one after another at best. The fixed cost taken off
    the wall is a 1-case run's wall less its own chain."""
    data = make_medr_data(work / f"medr{cases}", cases)

    def timed_medr(count: int) -> tuple[float, list[float]]:
        server = Server(latency, work, medr=True)
        options = [
            f"--medbench-data={data}",
            "-m",
            "exam_free_turn or diagnosis_free_turn",
            "--model=openai/bench",
            f"--api-base={server.api_base}",
            "--judge-model=openai/bench-judge",  # also the patient agent
            f"--judge-api-base={server.api_base}",
            "--medbench-no-cache",
            f"--medbench-limit={count}",
            f"--medbench-concurrency={in_flight}",
        ]
        wall, _ = run(options, env)
        return wall, server.finish()

    wall, stamps = timed_medr(cases)
    one, one_stamps = timed_medr(1)
    chain = len(one_stamps)  # one case's calls: each waits for the one before it
    bound = chain * latency * max(1.0, cases / in_flight)
    fixed = one - chain * latency
    return {
        "run": label,
        "cases": cases,
        "calls": len(stamps),
        "chain_calls": chain,
        "wall_s": round(wall, 2),
        "fixed_s": round(fixed, 2),
        "critical_path_bound_s": round(bound, 2),
        "end_to_end_ratio": round(bound / (wall - fixed), 3),
    }


def lean_options(data: Path, api_base: str, concurrency: int) -> list[str]:
    """One-shot MCQA items of ``data`` asked of the endpoint at ``api_base`` on the lean path, no cache."""
    return [
        f"--medbench-data={data}",
        "--model=openai/bench",
        f"--api-base={api_base}",
        "--medbench-no-cache",
        "--medbench-shots=0",
        f"--medbench-concurrency={concurrency}",
    ]


def timed(
    items: int, concurrency: int, workers: int, latency: float, data: Path, work: Path, env: dict[str, str]
) -> tuple[float, float, list[float]]:
    """(wall seconds, monotonic start, the endpoint's answer times) of one run against a fresh server."""
    server = Server(latency, work)
    options = [*lean_options(data, server.api_base, concurrency), f"--medbench-limit={items}"]
    if workers:
        options += ["-n", str(workers)]
    wall, started = run(options, env)
    return wall, started, server.finish()


def end_to_end(
    label: str,
    items: int,
    in_flight: int,
    workers: int,
    latency: float,
    data: Path,
    work: Path,
    env: dict,
    repeats: int = 3,
) -> dict:
    """The whole command's wall time minus a 1-item run's, against the endpoint bound: the median of
    ``repeats`` pairs of runs (on 2 shared cores one pair's ratio moves by 0.05 or more from run to
    run), each ratio given beside it."""
    concurrency = in_flight // max(1, workers)
    pairs = []
    for _ in range(repeats):
        wall, _, stamps = timed(items, concurrency, workers, latency, data, work, env)
        one, _, _ = timed(1, concurrency, workers, latency, data, work, env)
        pairs.append((wall, one, len(stamps)))
    bound = items * latency / in_flight
    ratios = [bound / (wall - one) for wall, one, _ in pairs]
    # the median pair (``statistics`` here would be bench/statistics.py, first on sys.path)
    wall, one, answered = sorted(pairs, key=lambda pair: bound / (pair[0] - pair[1]))[repeats // 2]
    return {
        "run": label,
        "items": answered,
        "wall_s": round(wall, 2),
        "one_item_wall_s": round(one, 2),
        "bound_s": round(bound, 2),
        "end_to_end_ratio": round(bound / (wall - one), 3),
        "ratios_of_each_pair": [round(ratio, 3) for ratio in ratios],
    }


def bare_pytest(count: int, work: Path, env: dict, *options: str) -> float:
    """Wall seconds of bare pytest (``options`` added) on ``count`` trivial parametrized tests."""
    test = work / f"trivial{count}" / "test_trivial.py"
    test.parent.mkdir(exist_ok=True)
    parametrize = f"@pytest.mark.parametrize('n', range({count}))"
    test.write_text(f"import pytest\n\n{parametrize}\ndef test(n):\n    pass\n")
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", *options, str(test), "-q", "-p", "no:cacheprovider"]
    subprocess.run(command, env=env, cwd=NEUTRAL_CWD, stdout=subprocess.DEVNULL, check=False)
    return time.monotonic() - started


def bare_xdist_floor(items: int, work: Path, env: dict) -> dict:
    """What pytest-xdist alone costs under -n 2 on this machine: ``items`` trivial tests' wall minus
    one test's, no plugin loaded but xdist (the same difference the end-to-end rows take)."""
    bare = {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    walls = [bare_pytest(count, work, bare, "-p", "xdist.plugin", "-n", "2") for count in (items, 1)]
    return {
        "run": f"floor: {items:,} trivial tests, bare pytest -n 2, wall minus 1 test's",
        "wall_s": round(walls[0], 2),
        "one_item_wall_s": round(walls[1], 2),
        "difference_s": round(walls[0] - walls[1], 2),
    }


def measure(
    label: str,
    items: int,
    concurrency: int,
    workers: int,
    latency: float,
    data: Path,
    work: Path,
    env: dict[str, str],
) -> dict:
    wall, started, stamps = timed(items, concurrency, workers, latency, data, work, env)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else float("nan")
    rate = (len(stamps) - 1) / span if span else float("nan")
    bound = concurrency * max(1, workers) / latency
    return {
        "run": label,
        "items": len(stamps),
        "wall_s": round(wall, 1),
        "items_per_s": round(rate, 1),
        "share_of_bound": round(rate / bound, 3),
        "startup_s": round(stamps[0] - started - latency, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="fewer items, for a smoke run")
    args = parser.parse_args()
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # what a user's machine does: see the docstring
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big = make_data(work / "big", 15_000)
        n = 200 if args.quick else 1000
        for workers in (0, 2):
            for in_flight in (32, 64):
                count = n * in_flight // 16  # about 3 s of calls at the bound
                label = f"end to end, {in_flight} in flight" + (f", -n {workers}" if workers else "")
                repeats = 1 if args.quick else 3
                row = end_to_end(label, count, in_flight, workers, args.latency, big, work, env, repeats)
                rows.append(row)
        rows.append(bare_xdist_floor(n * 64 // 16, work, env))
        cases = 64 if args.quick else 256
        label = "MedR-Bench free-turn dialogue, LLM agent and judge, 32 cases in flight"
        rows.append(medr_case(label, cases, 32, args.latency, work, env))
        wall, _ = run(["--collect-only", f"--medbench-data={big}"], env)
        rows.append({"run": "collect 15,000 items", "wall_s": round(wall, 2)})
        oracle, _ = run(["--model=medbench/oracle"], env)
        rows.append({"run": "pytest suites/ --model medbench/oracle (99 items)", "wall_s": round(oracle, 2)})
        builtin, _ = run(["--model=medbench/oracle", f"--medbench-data={big}"], env)
        rows.append({"run": "15,000 items, --model medbench/oracle", "wall_s": round(builtin, 2)})
        trivial = bare_pytest(15_000, work, env)  # bare pytest's own cost for as many items
        rows.append({"run": "15,000 trivial tests, bare pytest", "wall_s": round(trivial, 2)})
        rows.append(measure("window: concurrency 1", n // 5, 1, 0, args.latency, big, work, env))
        rows.append(measure("window: concurrency 8", n // 2, 8, 0, args.latency, big, work, env))
        for workers, concurrency in ((2, 1), (16, 1), (16, 4)):
            label = f"window: -n {workers}, concurrency {concurrency} each"
            count = n if concurrency == 1 else 3 * n
            rows.append(measure(label, count, concurrency, workers, args.latency, big, work, env))
        cache = work / "cache.sqlite3"
        server = Server(args.latency, work)
        fill = [
            f"--medbench-data={big}",
            "--model=openai/bench",
            f"--api-base={server.api_base}",
            f"--medbench-cache={cache}",
            "--medbench-shots=0",
            "--medbench-concurrency=64",
        ]
        if args.quick:
            fill.append("--medbench-limit=2000")
        fill_wall, _ = run(fill, env)
        server.finish()
        rerun_wall, _ = run(fill, env)
        rerun_n2_wall, _ = run([*fill, "-n", "2"], env)
        rows.append({"run": "fill the cache (concurrency 64)", "wall_s": round(fill_wall, 1)})
        rows.append({"run": "fully cached rerun", "wall_s": round(rerun_wall, 1)})
        rows.append({"run": "fully cached rerun, -n 2", "wall_s": round(rerun_n2_wall, 1)})
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows.append({"run": "peak RSS of any run", "rss_mb": round(peak_mb)})
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
