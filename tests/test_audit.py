"""The data audit: ``medbench audit`` and the ``audit`` object of each leaderboard task entry.

The task files reproduce the quirks public reports give for the real MedS-Bench files (issue 19):
task12's 650 golds all "no"; task16's commonest label 50.4% (of 1,188); task123's 55.2% (of 1,000);
task131's 50.2% (of 1,500); task100's 304 instances over 110 distinct inputs, one input 36 times.
The expected figures are those published numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import SUITES
from pytest_medbench.cli import main


def write_task(root: Path, relative: str, pairs: list[tuple[str, str]]) -> None:
    path = root / "meds-bench" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    instances = [{"input": text, "output": gold} for text, gold in pairs]
    path.write_text(json.dumps({"Definition": ["Answer."], "Instances": instances}))


def labelled(counts: dict[str, int], template: str = "{}") -> list[tuple[str, str]]:
    """Distinct inputs, golds by label count."""
    golds = [template.format(label) for label, count in counts.items() for _ in range(count)]
    return [(f"Claim number {n}.", gold) for n, gold in enumerate(golds)]


@pytest.fixture(scope="module")
def quirky_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audit") / "data"
    write_task(root, "Fact_verication/task12_pubmedqa_classification.json", labelled({"no": 650}))
    counts16 = {"false": 599, "true": 300, "mixture": 200, "unproven": 89}  # 599 / 1188 = 50.4%
    write_task(root, "Fact_verication/task16_test_healthfact_classification.json", labelled(counts16))
    pubmedqa = [
        (f"Context: study {n}.\nQuestion: does it work?", gold)
        for n, (_, gold) in enumerate(labelled({"yes": 552, "no": 348, "maybe": 100}))
    ]  # 552 / 1000 = 55.2%
    write_task(root, "MCQA/task123_pubmedqa_test_set.json", pubmedqa)
    seer = {
        "surgery": 753,
        "radiation": 300,
        "chemotherapy": 200,
        "hormone": 100,
        "none": 80,
        "a": 40,
        "b": 27,
    }
    write_task(
        root,
        "Treatment_planning/task131_SEER_text_classification_test.json",
        labelled(seer, "The treatment planning is: {}."),  # 753 / 1500 = 50.2%
    )
    repeated = [("Is aspirin useful?", f"Answer number {k}.") for k in range(36)]  # one input, 36 answers
    others = [(f"Question {1 + k % 109}?", f"Justification {k}.") for k in range(268)]  # 109 more inputs
    write_task(root, "Fact_verication/task100_ebms_answer_vertification.json", repeated + others)
    return root


def test_medbench_audit_reports_the_published_quirks(quirky_data, capsys):
    assert main(["audit", str(quirky_data), "--json"]) == 0
    audits = json.loads(capsys.readouterr().out)
    task12 = audits["task12"]
    assert (task12["instances"], task12["majority_label"], task12["majority_share"]) == (650, "no", 100.0)
    assert task12["baseline_pass_rate"] == 100.0  # a constant answer scores 100
    assert task12["flags"] == ["degenerate", "unbalanced_golds"]
    assert round(audits["task16"]["majority_share"], 1) == 50.4
    assert audits["task16"]["flags"] == ["unbalanced_golds"] and audits["task16"]["labels"] == 4
    assert round(audits["task123"]["majority_share"], 1) == 55.2
    assert audits["task123"]["majority_label"] == "yes" and audits["task123"]["labels"] == 3
    assert round(audits["task131"]["majority_share"], 1) == 50.2
    assert audits["task131"]["majority_label"] == "surgery" and audits["task131"]["labels"] == 7
    task100 = audits["task100"]
    assert (task100["instances"], task100["distinct_inputs"]) == (304, 110)
    assert task100["flags"] == ["duplicate_inputs"] and "majority_share" not in task100  # not a label task
    assert "baseline_pass_rate" in task100  # the command scores the generation baseline too

    assert main(["audit", str(quirky_data)]) == 0
    table = capsys.readouterr().out.splitlines()
    row12 = next(line for line in table if line.startswith("task12 "))
    assert row12.split()[1:5] == ["650", "650", "100.0", "100.0"] and "degenerate" in row12


def test_audit_json_prints_a_label_utf8_cannot_carry_as_its_escape(tmp_path, capsys):
    """A gold label with a lone surrogate (a data file's broken escape): printed as its JSON escape,
    so the JSON reads back as the same label, where printing it raised UnicodeEncodeError."""
    golds = labelled({"no \ud800": 3, "yes": 1})
    write_task(tmp_path / "data", "Fact_verication/task12_pubmedqa_classification.json", golds)
    assert main(["audit", str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task12"]["majority_label"] == "no \ud800"


def test_audit_of_a_missing_directory_is_a_usage_error(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such directory" in capsys.readouterr().err


def test_audit_of_a_directory_without_meds_bench_tasks_is_a_usage_error(tmp_path, capsys):
    """Nothing audited is not an empty table and exit 0: the command says what is missing."""
    assert main(["audit", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"medbench: audit: {tmp_path} has no meds-bench/ folder" in captured.err and not captured.out
    (tmp_path / "meds-bench" / "MCQA").mkdir(parents=True)
    (tmp_path / "meds-bench" / "MCQA" / "notes.txt").write_text("not a task")
    assert main(["audit", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"{tmp_path / 'meds-bench'} holds no task*.json[l] file" in captured.err and not captured.out


@pytest.fixture(scope="module")
def small_quirky_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audit-run") / "data"
    write_task(root, "Fact_verication/task12_pubmedqa_classification.json", labelled({"no": 12}))
    write_task(
        root, "Fact_verication/task16_test_healthfact_classification.json", labelled({"false": 6, "true": 4})
    )
    write_task(
        root, "Explanation/task46_do_entity_explanation.json", [("Define asthma.", "A lung disease.")] * 3
    )
    return root


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_every_task_entry_carries_its_audit_and_the_summary_shows_it(
    small_quirky_data, pytester, tmp_path, workers
):
    report, page = tmp_path / "run.json", tmp_path / "run.html"
    result = pytester.runpytest(
        str(SUITES / "test_meds_bench.py"),
        "-p",
        "no:cacheprovider",
        "--medbench-data",
        str(small_quirky_data),
        "--medbench-report",
        str(report),
        "--medbench-html",
        str(page),
        "--medbench-no-cache",
        "-v",  # the summary's task rows
        *workers,
    )
    tasks = {task["task"]: task for task in json.loads(report.read_text())["tasks"]}
    assert tasks["task12"]["audit"] == {
        "instances": 12,
        "distinct_inputs": 12,
        "labels": 1,
        "majority_label": "no",
        "majority_share": 100.0,
        "baseline_pass_rate": 100.0,
        "flags": ["degenerate", "unbalanced_golds"],
    }
    assert tasks["task16"]["audit"]["majority_share"] == 60.0 and tasks["task16"]["audit"]["labels"] == 2
    # a generation task: duplicates counted; no majority; its baseline is left to medbench audit
    assert tasks["task46"]["audit"] == {"instances": 3, "distinct_inputs": 1, "flags": ["duplicate_inputs"]}

    lines = result.outlines
    row12 = next(line for line in lines if line.strip().startswith("task12 "))
    assert row12.endswith("; majority 100.0; DEGENERATE: every gold is one label")
    assert next(line for line in lines if line.strip().startswith("task16 ")).endswith("; majority 60.0")
    assert "majority" not in next(line for line in lines if line.strip().startswith("task46 "))
    html = page.read_text()
    assert "<span class='meta audit neg'>majority 100.0; DEGENERATE: every gold is one label</span>" in html
    assert "<span class='meta audit'>majority 60.0</span>" in html
