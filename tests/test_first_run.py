"""What a newcomer meets on a first run: failure messages, the summary's place and notes, the
"written to" lines. Expected values come from the fixture files and hand computation."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import FIXTURES, SUITES

TASK114 = FIXTURES / "meds-bench" / "Text_summarization" / "task114_medqsum.json"
# 11 tokens against the reference's 11, sharing "knee pain" in order: ROUGE-L P = R = F = 2/11 = 0.18
KNEE_ANSWER = "my knee pain is bad and i need some advice please"


def _run(pytester, *args: str):
    return pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--medbench-no-cache", *args)


def _replay(tmp_path, *records: dict) -> str:
    path = tmp_path / "replay.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return f"replay:{path}"


def test_a_generation_failure_shows_the_rule_the_answer_and_the_reference(pytester, tmp_path):
    reference = json.loads(TASK114.read_text(encoding="utf-8"))["Instances"][0]["output"]
    model = _replay(tmp_path, {"task": "task114", "id": "0", "output": KNEE_ANSWER})
    samples = tmp_path / "samples.jsonl"
    result = _run(pytester, "-k", "task114_medqsum-0", "--model", model, "--medbench-samples", str(samples))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "answer judged wrong: ROUGE-L 0.18 < 0.30",
            f"  parsed:    '{KNEE_ANSWER}'",
            f"  reference: '{reference}'",
            "  scores:    bleu_1 *, rouge_l 0.18",
        ]
    )
    assert "AssertionError" not in result.stdout.str()  # the message alone, no traceback
    (line,) = [json.loads(text) for text in samples.read_text(encoding="utf-8").splitlines()]
    assert line["reference"] == reference
    assert line["pass_rule"] == "ROUGE-L 0.18 < 0.30"


def test_an_mcqa_failure_names_the_letter_parsed_and_the_reference(pytester, tmp_path):
    lines = (FIXTURES / "meds-bench" / "MCQA" / "task57_medqa_usmle.jsonl").read_text(encoding="utf-8")
    instances = json.loads(lines)["Instances"]
    first = instances[0]
    wrong = next(
        letter for letter in "ABCD" if not first["output"].startswith(f"The right answer is {letter}")
    )
    model = _replay(
        tmp_path, {"task": "task57", "id": first.get("id", "0"), "output": f"The right answer is {wrong}"}
    )
    node = f"task57_medqa_usmle-{first.get('id', '0')}]"
    result = _run(pytester, "-k", node.rstrip("]"), "--model", model)
    result.stdout.fnmatch_lines(
        [
            "answer judged wrong: answer wrong under official scoring (must be correct)",
            f"  parsed:    '{wrong}'",
            f"  reference: '{first['output']}'",
            "  scores:    accuracy 0.00",
        ]
    )


def test_the_summary_comes_last_with_a_hint_when_nothing_is_written(pytester):
    result = _run(pytester, "-k", "task57")
    text = result.stdout.lines
    short = next(i for i, line in enumerate(text) if "short test summary info" in line)
    summary = next(i for i, line in enumerate(text) if "medbench summary" in line)
    assert summary > short
    assert text[-2] == (
        "hint: --medbench-report run.json writes the leaderboard, --medbench-html run.html a page"
    )
    assert "absent from the data" in result.stdout.str()  # MedS-Bench items were selected


def test_notes_are_only_about_what_was_selected(pytester, tmp_path):
    result = _run(pytester, "-m", "medr and rare", "--medbench-report", str(tmp_path / "run.json"))
    assert "MedS-Bench tasks absent" not in result.stdout.str()
    assert "hint:" not in result.stdout.str()


def test_each_output_file_prints_one_written_to_line(pytester, tmp_path):
    paths = {name: tmp_path / name for name in ("run.json", "run.html", "samples.jsonl")}
    result = _run(
        pytester,
        "-k",
        "task57",
        "--medbench-report",
        str(paths["run.json"]),
        "--medbench-html",
        str(paths["run.html"]),
        "--medbench-samples",
        str(paths["samples.jsonl"]),
    )
    out = result.stdout.str()
    for what, name in (("leaderboard", "run.json"), ("HTML page", "run.html"), ("samples", "samples.jsonl")):
        assert out.count(f"{what} written to {paths[name]}") == 1
        assert out.count(str(paths[name])) == 1
        assert paths[name].is_file()


def test_medbench_show_into_a_closed_pipe_exits_quietly(run_suites, tmp_path):
    run_suites("-k", "task57")
    command = "from pytest_medbench.cli import main; raise SystemExit(main())"
    process = subprocess.Popen(
        [sys.executable, "-c", command, "show", str(tmp_path / "leaderboard.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # the reader is gone before the first line (``| head`` that has had enough)
    stderr = process.stderr.read().decode()
    assert process.wait() == 0
    assert stderr == ""


def test_readme_subset_examples_select_items_on_the_bundled_fixtures(pytester):
    readme = (SUITES.parent / "README.md").read_text(encoding="utf-8")
    examples = re.findall(r"^pytest suites/ (-[km]) (\"[^\"]+\"|\S+)", readme, flags=re.MULTILINE)
    assert len(examples) >= 5
    for flag, expression in examples:
        result = pytester.runpytest(
            str(SUITES), "-p", "no:cacheprovider", "--collect-only", "-q", flag, expression.strip('"')
        )
        selected = [line for line in result.outlines if "::test_med" in line]
        assert selected, f"README's {flag} {expression} selects nothing"


def test_a_missing_key_stops_the_run_before_any_item_naming_the_variable(pytester, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    # a subprocess: pytester's in-process runner cannot report a pytest.exit from configure
    result = pytester.runpytest_subprocess(str(SUITES), "-p", "no:cacheprovider", "--model", "gpt-4o")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str() + result.stderr.str()
    assert out.count("OPENAI_API_KEY") == 1
    assert "gpt-4o needs OPENAI_API_KEY in the environment, and it is not set; no item was run" in out
    assert "failed" not in out and "passed" not in out


def test_a_judge_without_its_key_stops_the_run_too(pytester, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    result = pytester.runpytest_subprocess(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        "-m",
        "medr",
        "--judge-model",
        "anthropic/claude-3-5-sonnet-20241022",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "needs ANTHROPIC_API_KEY in the environment" in result.stdout.str() + result.stderr.str()


def test_an_unreachable_host_stops_the_run_after_the_first_failure(pytester, monkeypatch):
    closed = _closed_port()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = _run(
        pytester,
        "-k",
        "task57",
        "--model",
        "openai/x",
        "--api-base",
        f"http://127.0.0.1:{closed}/v1",
        "--medbench-retries",
        "0",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(failed=1)  # the other four task57 items were not run, not failed
    out = result.stdout.str()
    # the error once in the failure report: no chained "During handling of ..." (pytest's short summary
    # repeats a failure's first line, the whole line when CI is set, so it is left out of the count)
    report = "\n".join(line for line in result.outlines if not line.startswith("FAILED "))
    assert report.count("Connection refused") == 1
    assert "During handling" not in out
    assert (
        f"the model openai/x at http://127.0.0.1:{closed}/v1 cannot be reached; the other items were not run"
        in out
    )
    assert "INCOMPLETE: 1 of 5 items" in out


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_shared_dialogue_is_reused_not_a_cache_hit_for_the_builtin_model(pytester, tmp_path):
    """Built-in models are never cached. Two MedR-Bench settings share each dialogue: the second
    reuses the first's answers. The 1-turn dialogue is two model calls (ask, then diagnose); the
    baseline's free-turn dialogue is one (it asks for nothing more)."""
    samples, report = tmp_path / "samples.jsonl", tmp_path / "board.json"
    _run(pytester, "-m", "medr", "--medbench-samples", str(samples), "--medbench-report", str(report))
    usage = {}
    for text in samples.read_text(encoding="utf-8").splitlines():
        record = json.loads(text)
        usage[record["task"], record["id"]] = record["usage"]
    assert sum(entry["cache_hits"] for entry in usage.values()) == 0
    cases = {case for task, case in usage if task == "exam_1turn"}
    assert len(cases) == 4
    dialogues = (("exam_1turn", "diagnosis_1turn", 2), ("exam_free_turn", "diagnosis_free_turn", 1))
    for case in cases:
        for exam, diagnosis, calls in dialogues:
            pair = sorted((usage[t, case]["calls"], usage[t, case]["reused"]) for t in (exam, diagnosis))
            assert pair == [(0, calls), (calls, 0)], (case, exam)
    tasks = json.loads(report.read_text(encoding="utf-8"))["tasks"]
    assert sum(entry["reused"] for entry in tasks) == 4 * (2 + 1)  # 4 cases: 2 + 1 reused answers each
    assert sum(entry["cache_hits"] for entry in tasks) == 0


def _forty_task_data(tmp_path):
    """A data directory the size of the real MedS-Bench: 40 task files (each a copy of a bundled
    fixture file scored the same way, under another task id), plus the bundled MedR-Bench cases."""
    from pytest_medbench.data.meds_tasks import TASKS

    bundled = {path.name.split("_")[0]: path for path in (FIXTURES / "meds-bench").rglob("task*")}
    by_scorer = {TASKS[task].scorer: path for task, path in sorted(bundled.items()) if task in TASKS}
    data = tmp_path / "data"
    shutil.copytree(FIXTURES / "medrbench", data / "medrbench")
    (data / "meds-bench" / "all").mkdir(parents=True)
    chosen = []
    for task, spec in sorted(TASKS.items(), key=lambda pair: int(pair[0][4:])):
        source = bundled.get(task) or (by_scorer.get(spec.scorer) if spec.scorer != "label_prefix" else None)
        if source is not None and len(chosen) < 40:
            shutil.copy(source, data / "meds-bench" / "all" / f"{task}_copy{source.suffix}")
            chosen.append(task)
    assert len(chosen) == 40
    return data, {TASKS[task].category for task in chosen}


def test_the_summary_fits_a_screen_with_forty_tasks(pytester, tmp_path):
    """A row per MedS-Bench category (12 at most), per MedR-Bench category (3) and setting (6), one per
    benchmark (2), the header, the absent-tasks note, the lowest pass rates, the flags and the hint:
    30 lines at most, pytest's closing line included. -v adds the 40 task rows."""
    data, categories = _forty_task_data(tmp_path)
    result = _run(pytester, "--medbench-data", str(data))
    lines = result.outlines
    summary = lines[next(i for i, line in enumerate(lines) if "medbench summary" in line) :]
    assert len(summary) <= 30, "\n".join(summary)
    assert {line.split()[0] for line in summary if line.startswith("meds.")} == {
        f"meds.{category}" for category in categories
    }
    assert not [line for line in summary if line.startswith("  task")]  # no MedS-Bench task rows
    assert [line for line in summary if line.startswith("lowest pass rates: ")]

    verbose = _run(pytester, "--medbench-data", str(data), "-v")
    summary = verbose.outlines[next(i for i, x in enumerate(verbose.outlines) if "medbench summary" in x) :]
    assert len([line for line in summary if line.startswith("  task")]) == 40


def test_the_summary_names_flagged_tasks_and_each_gate(pytester):
    from pytest_medbench.report.terminal import summary_lines

    metric = {"accuracy": {"value": 50.0, "ci95": [10.0, 90.0], "n": 4}}
    counts = {"n": 4, "passed": 2, "errors": 0, "pass_rate": 50.0, "metrics": metric}
    task_fields = {"benchmark": "meds", "category": "mcqa", **counts}
    degenerate = {"instances": 4, "distinct_inputs": 4, "majority_share": 100.0, "flags": ["degenerate"]}
    board = {
        "categories": [{"benchmark": "meds", "category": "mcqa", **counts}],
        "benchmarks": [{"benchmark": "meds", **counts}],
        "tasks": [
            {"task": "task57", **task_fields, "errors": 2, "truncated": 1},
            {"task": "task12", **task_fields, "audit": degenerate},
        ],
    }
    assert summary_lines(board)[-1] == (
        "flagged: task12 (degenerate: every gold is one label); task57 (2 errors, 1 truncated)"
    )

    result = _run(pytester, "-k", "task57", "--medbench-gate", "meds.mcqa.accuracy>=101")
    text = result.stdout.lines
    gate = next(i for i, line in enumerate(text) if line.startswith("gate meds.mcqa.accuracy = "))
    assert text[gate].endswith(" (needs >= 101): FAILS")  # no accuracy reaches 101
    assert gate > next(i for i, line in enumerate(text) if "medbench summary" in line)


def test_a_rerun_reads_a_shared_dialogue_from_the_cache_once(pytester, tmp_path, openai_server):
    """Against a cached model, the second run's 1-turn dialogue (two model calls) is two cache hits
    for the setting that runs first and two reused answers for its sibling, as in the first run."""
    samples = tmp_path / "samples.jsonl"
    options = ["-k", "1turn and PMC90000001", "--model=openai/echo", f"--api-base={openai_server.api_base}"]
    options += ["--medbench-cache", str(tmp_path / "cache.sqlite3"), "--medbench-samples", str(samples)]
    usages = []
    for _ in range(2):
        pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", *options)
        usage = [json.loads(line)["usage"] for line in samples.read_text(encoding="utf-8").splitlines()]
        usages.append(sorted((u["calls"], u["cache_hits"], u["reused"]) for u in usage))
    assert usages == [[(0, 0, 2), (2, 0, 0)], [(0, 0, 2), (2, 2, 0)]]
    assert len(openai_server.requests) == 2  # the first run's two calls; the second asks nothing


def test_an_answer_another_worker_asked_for_the_sibling_setting_is_reused():
    """Under -n the sibling setting may run on another worker and read the dialogue from the shared
    cache: asked in this run for another item, so reused; the same answer from an earlier run is a
    cache hit; this item's own answer (a prefetch another worker made) counts in full."""
    from pytest_medbench.models.completion import Completion
    from pytest_medbench.report.records import Usage
    from pytest_medbench.run.metering import _add_usage

    asked = {"text": "x", "prompt_tokens": 5, "completion_tokens": 3, "cached": True}
    sibling, mine = "run1 medr/exam_1turn/P", "run1 medr/diagnosis_1turn/P"

    def counted(paid_by: str, run_id: str) -> tuple[int, int, int, int]:
        usage = Usage()
        _add_usage(usage, Completion(**asked, paid_by=paid_by, run_id=run_id), mine, "run1", False)
        return usage.calls, usage.cache_hits, usage.reused, usage.prompt_tokens

    assert counted(sibling, "run1") == (0, 0, 1, 0)  # this run, for the sibling: reused
    assert counted("run0 medr/exam_1turn/P", "run0") == (1, 1, 0, 0)  # an earlier run's: a cache hit
    assert counted(mine, "run1") == (1, 0, 0, 5)  # this item's own, from another worker's prefetch
