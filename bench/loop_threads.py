"""Where the test loop's wall goes in one process with calls in flight (not a test): 4,000 one-shot
MCQA items at 64 in flight against the 50 ms endpoint of bench/latency_server.py, and, beside them,
as many trivial tests with one fixture in bare pytest (the suite's shape: `test_meds(meds_item,
medbench)`).

For each run it prints the test loop's wall, the main thread's CPU in it, how long the main thread
waited for answers the pool had not yet given, and, from /proc, the CPU and context switches of
every thread of the process up to the last item (voluntary: it blocked, on the interpreter lock
among others; involuntary: the kernel gave its core to another task). What is left of the loop's
wall after the main thread's CPU and its waits for answers is time it had work and did not run:
waiting for the interpreter lock, or for a core.

    python bench/loop_threads.py          # about 30 seconds; Linux only (/proc)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import NEUTRAL_CWD, PYTEST, Server, lean_options, make_data

# loaded into the timed pytest with -p: it writes its figures to $LOOP_THREADS_OUT at exit
PROBE = textwrap.dedent(
    '''
    import atexit, json, os, threading, time
    import pytest

    _loop = {}
    _threads = {}
    _waited = [0.0]
    _HZ = os.sysconf("SC_CLK_TCK")


    def _per_thread():
        """CPU seconds and context switches of each live thread, by name (the pool's summed)."""
        names = {thread.native_id: thread.name for thread in threading.enumerate()}
        totals = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                stat = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                status = open(f"/proc/self/task/{tid}/status").read()
            except OSError:
                continue
            name = names.get(int(tid), "other")
            name = "prefetch pool" if name.startswith("medbench-prefetch") else name
            entry = totals.setdefault(name, {"cpu_s": 0.0, "voluntary": 0, "involuntary": 0})
            entry["cpu_s"] += (int(stat[11]) + int(stat[12])) / _HZ
            for line in status.splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    entry["voluntary"] += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    entry["involuntary"] += int(line.split()[1])
        return totals


    def pytest_configure(config):
        try:
            from pytest_medbench.run import scheduler
        except ImportError:
            return
        wait = scheduler.wait

        def timed_wait(futures):
            started = time.perf_counter()
            try:
                return wait(futures)
            finally:
                _waited[0] += time.perf_counter() - started

        scheduler.wait = timed_wait


    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(session):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return (yield)
        finally:
            _loop["wall_s"] = time.perf_counter() - wall
            _loop["main_thread_cpu_s"] = time.thread_time() - cpu


    _last = []


    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(session):
        _last[:] = [item.nodeid for item in session.items[-1:]]


    def pytest_runtest_logfinish(nodeid, location):
        if [nodeid] == _last:  # the last item: before the pool is shut down at the loop's end
            _threads.update(_per_thread())


    @atexit.register
    def _write():
        figures = {**_loop, "main_thread_waited_for_answers_s": _waited[0], "threads": _threads}
        with open(os.environ["LOOP_THREADS_OUT"], "w") as out:
            json.dump(figures, out)
    '''
)


def measure(label: str, command: list[str], work: Path, env: dict[str, str]) -> dict:
    out = work / "figures.json"
    env = {
        **env,
        "LOOP_THREADS_OUT": str(out),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(work), env.get("PYTHONPATH")])),
    }
    subprocess.run(command, env=env, cwd=NEUTRAL_CWD, stdout=subprocess.DEVNULL, check=False)
    figures = json.loads(out.read_text())
    main = figures["threads"].get("MainThread", {})
    unexplained = (
        figures["wall_s"] - figures["main_thread_cpu_s"] - figures["main_thread_waited_for_answers_s"]
    )
    return {
        "run": label,
        "loop_wall_s": round(figures["wall_s"], 2),
        "main_thread_cpu_s": round(figures["main_thread_cpu_s"], 2),
        "main_thread_waited_for_answers_s": round(figures["main_thread_waited_for_answers_s"], 2),
        "main_thread_had_work_and_did_not_run_s": round(unexplained, 2),
        "main_thread_switches": {"voluntary": main.get("voluntary"), "involuntary": main.get("involuntary")},
        "threads": {
            name: {**entry, "cpu_s": round(entry["cpu_s"], 2)} for name, entry in figures["threads"].items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as bench/throughput.py: what a user's machine does
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "loop_threads_probe.py").write_text(PROBE)
        data = make_data(work / "data", args.items)
        server = Server(0.05, work)
        options = lean_options(data, server.api_base, args.in_flight)
        label = f"{args.items:,} items, {args.in_flight} in flight, one process"
        rows.append(measure(label, [*PYTEST, "-p", "loop_threads_probe", *options], work, env))
        server.finish()
        trivial = work / "trivial" / "test_trivial.py"
        trivial.parent.mkdir()
        trivial.write_text(
            "import pytest\n\n@pytest.fixture\ndef fixture():\n    return 1\n\n"
            f"@pytest.mark.parametrize('n', range({args.items}))\ndef test(n, fixture):\n    pass\n"
        )
        bare = [sys.executable, "-m", "pytest", str(trivial), "-q", "-p", "no:cacheprovider"]
        label = f"{args.items:,} trivial tests with one fixture, bare pytest"
        rows.append(measure(label, [*bare, "-p", "loop_threads_probe"], work, env))
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
