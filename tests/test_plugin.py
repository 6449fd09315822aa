"""Plugin wiring: light import, options, selection by -k and -m, headers, usage errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import FIXTURES, SUITES


def test_entry_module_imports_nothing_heavy():
    code = (
        "import sys, pytest_medbench.plugin as p; "
        "heavy = ('litellm', 'jsonschema', 'nltk', 'rouge', 'rapidfuzz', 'numpy', 'openai'); "
        "heavy = [m for m in heavy if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def collected(pytester, *args: str) -> list[str]:
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--collect-only", "-q", *args)
    return [line for line in result.outlines if "::" in line]


@pytest.mark.parametrize(
    ("selection", "expected_fragment", "expected_count"),
    [
        (("-k", "mcqa"), "mcqa-", 17),
        (("-k", "task57"), "task57_medqa_usmle", 5),
        (("-k", "PMC90000002"), "-PMC90000002", 5),
        (("-k", "oracle_diagnosis and PMC90000002"), "oracle_diagnosis-PMC90000002", 1),
        (("-m", "medr and rare"), "PMC", 11),
        (("-m", "exam_free_turn and body_brain_and_nerves"), "exam_free_turn-PMC90000004", 1),
        (("-m", "meds and ner"), "ner-task125", 4),
    ],
)
def test_selection(pytester, selection, expected_fragment, expected_count):
    ids = collected(pytester, *selection)
    assert len(ids) == expected_count, ids
    assert all(expected_fragment in node for node in ids)


def test_diagnosis_keyword_selects_both_benchmarks(pytester):
    ids = collected(pytester, "-k", "diagnosis")
    assert any("task130_ddxplus" in node for node in ids)
    assert any("oracle_diagnosis-PMC" in node for node in ids)
    assert not any("treatment" in node for node in ids)


def test_header_announces_model_and_data(pytester):
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--collect-only", "-q", "-v")
    result.stdout.fnmatch_lines(
        ["medbench: model medbench/baseline (built-in)*", f"medbench: data {FIXTURES}*"]
    )


def test_data_dir_without_benchmarks_is_a_usage_error(pytester, tmp_path):
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--medbench-data", str(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{tmp_path}*none of meds-bench/, medrbench/, custom/*"])


def test_ini_keys_set_options(pytester, tmp_path):
    pytester.makeini(
        f"[pytest]\nmedbench_model = medbench/oracle\nmedbench_limit = 1\nmedbench_data = {FIXTURES}\n"
    )
    result = pytester.runpytest(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        "-c",
        str(pytester.path / "tox.ini"),
        "--medbench-scoring",
        "strict",
        "-k",
        "task57 or oracle_diagnosis",
    )
    result.assert_outcomes(passed=2)


def test_a_missing_benchmark_folder_is_named_in_the_summary(pytester, tmp_path):
    data = tmp_path / "data"
    (data / "medrbench").mkdir(parents=True)
    source = FIXTURES / "medrbench" / "diagnosis_fixture_cases.json"
    (data / "medrbench" / "diagnosis_x.json").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    result = pytester.runpytest(
        str(SUITES), "-p", "no:cacheprovider", "--medbench-data", str(data), "--model", "medbench/oracle"
    )
    result.stdout.fnmatch_lines([f"{data} has no meds-bench/ folder, so no MedS-Bench items"])
    result.assert_outcomes(passed=20, skipped=1)  # the empty MedS parameter set shows as one skip


def test_an_unroutable_model_name_is_a_usage_error_with_suggestions(pytester):
    result = pytester.runpytest(
        str(SUITES), "-p", "no:cacheprovider", "--collect-only", "--model", "claude-35"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot route the model 'claude-35'*did you mean claude-3-5*"])


def test_aliases_resolve_and_pyproject_extends_them(pytester, openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = pytester.runpytest(
        str(SUITES), "-p", "no:cacheprovider", "--collect-only", "-v", "--model", "gpt-4o"
    )
    result.stdout.fnmatch_lines(["medbench: model gpt-4o = openai/gpt-4o-2024-11-20;*"])
    pytester.makepyprojecttoml('[tool.medbench.models]\nhouse-model = "openai/echo-7b"\n')
    report = pytester.path / "board.json"
    options = ["--rootdir", str(pytester.path), "-c", str(pytester.path / "pyproject.toml"), "-k", "task57"]
    result = pytester.runpytest(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        *options,
        "--model=house-model",
        f"--api-base={openai_server.api_base}",
        "--medbench-no-cache",
        f"--medbench-report={report}",
    )
    model = json.loads(report.read_text())["run"]["model"]
    assert (model["name"], model["litellm_model"]) == ("house-model", "openai/echo-7b")
    assert {request["model"] for request in openai_server.requests} == {"echo-7b"}


# The bundled fixtures: 22 MedR-Bench items (4 cases x 5 settings + 2 treatment cases) in
# test_medr_bench.py, then 77 MedS-Bench items; every item's dot is "." or "F".
# MedR-Bench answers reused from a shared dialogue: per case, the 1-turn dialogue's 2 model calls and
# the baseline's one free turn (it asks for nothing more), each reused by the second setting: 4 x 3 = 12.
PROGRESS = (
    r"\[medbench\] {done}/99 items \({share}%\), 0 errors, 0 cache hits, 12 reused within the run, "
    r"0 tokens, \$0\.0000 so far, ETA \dm\d\ds"
)


def test_progress_lines_never_split_pytest_dot_lines(pytester, monkeypatch):
    """At 80 columns pytest's line holds 72 characters before its " [ NN%]": the MedR-Bench file's
    22 dots end at the file; "suites/test_meds_bench.py " (26) takes 46 dots, reaching item 68; the
    last 31 dots close the run. A progress line may come only after a whole line."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(SUITES.parent)  # as a user runs it: pytest names the files suites/...
    result = pytester.runpytest("suites", "-p", "no:cacheprovider", "--medbench-progress=on")
    lines = result.outlines
    start = lines.index("collected 99 items")
    expected = [
        r"",
        r"suites/test_medr_bench\.py [.F]{22} {25}\[ 22%\]",
        r"suites/test_meds_bench\.py [.F]{46} \[ 68%\]",
        PROGRESS.format(done=68, share=68),
        r"[.F]{31} {42}\[100%\]",
        PROGRESS.format(done=99, share=100),
        r"",
        r"=+ FAILURES =+",
    ]
    shown = lines[start + 1 : start + 1 + len(expected)]
    assert all(re.fullmatch(pattern, line) for pattern, line in zip(expected, shown, strict=True)), shown


def test_progress_lines_under_xdist_and_verbose_keep_pytest_lines_whole(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(SUITES.parent)
    result = pytester.runpytest("suites", "-p", "no:cacheprovider", "--medbench-progress=on", "-n", "2")
    lines = result.outlines
    end = next(number for number, line in enumerate(lines) if "FAILURES" in line)
    run = lines[lines.index("2 workers [99 items]") + 2 : end]
    progress = [line for line in run if line.startswith("[medbench]")]
    dots = [line for line in run if not line.startswith("[medbench]")]
    assert dots and all(re.fullmatch(r"[.F]+ +\[ *\d+%\]", line) for line in dots), run
    assert all(len(line) == 79 for line in dots), run
    assert sum(line.count(".") + line.count("F") for line in dots) == 99
    assert progress and re.fullmatch(PROGRESS.format(done=99, share=100).replace("12", r"\d+"), progress[-1])

    verbose = pytester.runpytest("suites", "-p", "no:cacheprovider", "--medbench-progress=on", "-v")
    items = [x for x in verbose.outlines if x.startswith("suites/") and "::" in x]
    assert len(items) == 99 and all(re.search(r"(PASSED|FAILED) +\[ *\d+%\]$", x) for x in items)
    progress = [x for x in verbose.outlines if x.startswith("[medbench]")]
    # a line every tenth: after items 10, 20, ..., 90 and the last (a loaded machine may add 30-s lines)
    done = [int(line.split()[1].split("/")[0]) for line in progress]
    assert {*range(10, 100, 10), 99} <= set(done) and done == sorted(done) and done[-1] == 99
    assert not [x for x in verbose.outlines if "[medbench]" in x and not x.startswith("[medbench]")]


def test_progress_is_off_by_default_where_output_is_not_a_terminal(pytester):
    quiet = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "-k", "task57")  # auto: not a terminal
    assert not [line for line in quiet.outlines if "[medbench]" in line]


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--medbench-concurrency", "0", "at least 1"),
        ("--medbench-concurrency", "-3", "at least 1"),
        ("--medbench-limit", "-1", "at least 1"),
        ("--medbench-limit", "0", "at least 1"),
        ("--medbench-epochs", "0", "at least 1"),
        ("--medbench-retries", "-1", "at least 0"),
        ("--medbench-timeout", "0", "greater than 0"),
        ("--medbench-rpm", "0", "at least 1"),
        ("--medbench-tpm", "0", "at least 1"),
        ("--medbench-backoff", "-0.5", "at least 0"),
        ("--max-tokens", "0", "at least 1"),
        ("--temperature", "-1", "at least 0"),
        ("--medbench-shots", "-1", "at least 0"),
        ("--medbench-max-drop", "-2", "at least 0"),
        ("--medbench-alpha", "1.5", "between 0 and 1"),
        ("--medbench-alpha", "0", "between 0 and 1"),
    ],
)
def test_option_values_out_of_range_are_usage_errors_naming_the_option(pytester, option, value, rule):
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--collect-only", option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {option}: '{value}' must be {rule}"])


def test_an_ini_value_out_of_range_is_a_usage_error_too(pytester):
    pytester.makeini("[pytest]\nmedbench_concurrency = 0\n")
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "-c", str(pytester.path / "tox.ini"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --medbench-concurrency: '0' must be at least 1"])


@pytest.mark.parametrize(
    ("outputs", "named", "reason"),
    [
        (
            {"--medbench-report": "x.json", "--medbench-samples": "x.json"},
            "--medbench-samples",
            "--medbench-report names that file too",
        ),
        (
            {"--medbench-html": "c.sqlite3", "--medbench-cache": "c.sqlite3"},
            "--medbench-html",
            "--medbench-cache names that file too",
        ),
        (
            {"--medbench-baseline": "last.json", "--medbench-report": "last.json"},
            "--medbench-report",
            "--medbench-baseline names that file too",
        ),
        ({"--medbench-report": "b" * 300 + ".json"}, "--medbench-report", "File name too long"),
    ],
    ids=["report-and-samples", "html-and-cache", "report-over-its-baseline", "name-too-long"],
)  # fmt: skip
def test_output_paths_that_clash_or_cannot_exist_are_usage_errors(pytester, tmp_path, outputs, named, reason):
    """Before, two outputs on one file wrote the second over the first (both said "written to"), and
    a file name the file system refuses was an INTERNALERROR from the option check itself."""
    options = [f"{flag}={tmp_path / name}" for flag, name in outputs.items()]
    result = pytester.runpytest(str(SUITES), "-p", "no:cacheprovider", "--model=medbench/oracle", *options)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {named} {tmp_path / outputs[named]}: {reason}*"])


OUTCOMES = """
import pytest

def test_pass(medbench):
    medbench.record("own", {"accuracy": 1.0})

def test_fail(medbench):
    medbench.record("own", {"accuracy": 1.0})
    assert False

def test_skip(medbench):
    medbench.record("own", {"accuracy": 1.0})
    pytest.skip("not for this model")

@pytest.mark.xfail(strict=True)
def test_strict_xpass(medbench):
    medbench.record("own", {"accuracy": 1.0})

@pytest.mark.xfail
def test_xfail(medbench):
    medbench.record("own", {"accuracy": 1.0})
    assert False
"""


def test_record_without_passed_takes_the_tests_outcome_as_pytest_reports_it(pytester, tmp_path):
    """``passed=None`` is the test's outcome: a strict xpass is a failed test, an xfail failed, and a
    skipped test is no item (before, a skip was a failed item and a strict xpass a passed one)."""
    pytester.makepyfile(OUTCOMES)
    board_path = tmp_path / "board.json"
    pytester.runpytest("-p", "no:cacheprovider", "--medbench-no-cache", f"--medbench-report={board_path}")
    items = json.loads(board_path.read_text())["items"]["custom/own"]
    passed = {nodeid.split("::")[1]: item["passed"] for nodeid, item in items.items()}
    assert passed == {"test_pass": True, "test_fail": False, "test_strict_xpass": False, "test_xfail": False}
