"""`medbench judge-check` against scripted judges on 127.0.0.1: a careful judge passes, one that
accepts any answer containing the reference fails on the negated and hedged probes, human labels give
hand-computed accuracy and kappa, and bad input is a usage error naming the file and line."""

from __future__ import annotations

import json
import re

import pytest
from openai_server import OpenAIServer, Reply

from conftest import FIXTURES
from pytest_medbench.cli import main


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text).lower().split())


def _answer_and_reference(request: dict) -> tuple[str, str]:
    prompt = request["messages"][1]["content"]
    answer = re.search(r"<<<ANSWER-[0-9a-f]+:[^\n]*>>>\n(.*)\n<<<END-ANSWER-", prompt, re.S).group(1)
    return answer, prompt.split("Reference diagnosis: ", 1)[1].split("\n", 1)[0]


def careful(request: dict, number: int) -> Reply:
    answer, reference = _answer_and_reference(request)
    return Reply(content="Correct" if _plain(answer) == _plain(reference) else "Wrong")


def lenient(request: dict, number: int) -> Reply:
    answer, reference = _answer_and_reference(request)
    return Reply(content="Correct" if _plain(reference) in _plain(answer) else "Wrong")


def check(server: OpenAIServer, *extra: str) -> int:
    return main(
        [
            "judge-check",
            f"--judge-model=openai/judge@{server.api_base}",
            "--medbench-data",
            str(FIXTURES),
            *extra,
        ]
    )


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def test_a_careful_judge_passes_and_the_figures_are_written(tmp_path, capsys):
    out = tmp_path / "check.json"
    with OpenAIServer(careful) as server:
        assert check(server, "--json", str(out)) == 0
    figures = json.loads(out.read_text())
    # 4 fixture diagnosis cases; the one without a body system gets no other-system probe: 3
    assert {kind: entry["n"] for kind, entry in figures["kinds"].items()} == {
        "verbatim": 4,
        "rewritten": 4,
        "other_system": 3,
        "negated": 4,
        "hedge": 4,
    }
    assert all(
        entry.get("false_positive_rate", 0) == 0 and entry.get("false_negative_rate", 0) == 0
        for entry in figures["kinds"].values()
    )
    assert figures["passed"] is True and "PASS" in capsys.readouterr().out


def test_a_judge_fooled_by_negation_and_hedges_fails(tmp_path, capsys):
    with OpenAIServer(lenient) as server:
        assert check(server) == 1
    out = capsys.readouterr().out
    assert "FAIL: negated, hedge" in out
    assert re.search(r"negated\s+4\s+100\.0%", out) and re.search(r"hedge\s+4\s+100\.0%", out)


def test_unparseable_verdicts_are_counted_and_fail_the_check(tmp_path):
    out = tmp_path / "check.json"
    with OpenAIServer(lambda request, number: Reply(content="It depends.")) as server:
        assert check(server, "--json", str(out)) == 1
    figures = json.loads(out.read_text())
    assert all(entry["unparseable_rate"] == 1.0 for entry in figures["kinds"].values())
    # and, conservatively, as wrong verdicts: every probe is a miss, whichever way it should go
    assert figures["kinds"]["verbatim"]["false_negative_rate"] == 1.0
    assert figures["kinds"]["negated"]["false_positive_rate"] == 1.0


def test_human_labels_give_accuracy_and_kappa(tmp_path):
    labels = tmp_path / "labels.jsonl"
    rows = [  # the careful judge says Correct, Wrong, Correct, Correct
        {
            "case": "PMC90000001",
            "setting": "oracle_diagnosis",
            "answer": "Graves disease",
            "verdict": "Correct",
        },
        {"case": "PMC90000002", "setting": "oracle_diagnosis", "answer": "Pneumonia", "verdict": "Wrong"},
        {
            "case": "PMC90000004",
            "setting": "oracle_diagnosis",
            "answer": "wilson disease",
            "verdict": "Correct",
        },
        {
            "case": "PMC90000001",
            "setting": "oracle_diagnosis",
            "answer": "graves disease",
            "verdict": "Wrong",
        },
    ]
    labels.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    out = tmp_path / "check.json"
    with OpenAIServer(careful) as server:
        assert check(server, "--labels", str(labels), "--json", str(out)) == 0
    found = json.loads(out.read_text())["labels"]
    # accuracy 3/4; kappa: po = 0.75, pe = 3/4 * 2/4 + 1/4 * 2/4 = 0.5, (0.75 - 0.5) / 0.5 = 0.5
    assert found["n"] == 4 and found["accuracy"] == 0.75 and found["cohen_kappa"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"case": "PMC90000001", "answer": "x", "verdict": "maybe"}',
            "line 2: verdict must be Correct or Wrong",
        ),
        ('{"case": "PMC404", "answer": "x", "verdict": "Wrong"}', "line 2: no 'PMC404'"),
        ("not json", "line 2: not JSON"),
    ],
)
def test_a_bad_labels_line_is_a_usage_error_naming_it(tmp_path, capsys, line, message):
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"case": "PMC90000001", "answer": "x", "verdict": "Wrong"}\n' + line + "\n")
    with OpenAIServer(careful) as server:
        assert check(server, "--labels", str(labels)) == 2
    error = capsys.readouterr().err
    assert str(labels) in error and message in error


def test_no_judge_model_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["judge-check"])
    assert exited.value.code == 2


def test_the_leaderboard_carries_the_last_check(run_suites, tmp_path):
    out = tmp_path / "check.json"
    with OpenAIServer(careful) as server:
        check(server, "--json", str(out))
    _, board = run_suites("-k", "oracle_diagnosis", f"--medbench-judge-check={out}")
    assert board["run"]["judge"]["check"] == json.loads(out.read_text())
    (tmp_path / "broken.json").write_text("{")
    result, _ = run_suites(f"--medbench-judge-check={tmp_path / 'broken.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--medbench-judge-check {tmp_path / 'broken.json'}*"])


def test_a_password_in_a_judge_url_is_masked_in_what_the_check_prints(tmp_path, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on: the judge cannot be reached
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    judge = f"openai/x@http://alice:S3cretPassw0rd@127.0.0.1:{port}/v1"
    assert main(["judge-check", "--judge-model", judge, "--json", str(tmp_path / "check.json")]) == 2
    said = capsys.readouterr()
    assert "S3cretPassw0rd" not in said.out + said.err
    assert "could not be asked" in said.err and "127.0.0.1" in said.err
