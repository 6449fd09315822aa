"""What a newcomer meets on a first run: failure messages, the summary's place and notes, the
"written to" lines. Expected values come from the fixture files and hand computation."""

from __future__ import annotations

import json
import re
import subprocess
import sys

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
