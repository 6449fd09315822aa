"""MedR-Bench end to end: dialogues against a real local server playing model, agent and judge;
the free-turn stop rules; strict verdicts; the offline judge; upstream templates; evidence."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai_server import OpenAIServer, Reply, served_by

from conftest import FIXTURES, SHARED_DATA, SUITES, needs_shared
from pytest_medbench.data.medr import load_medr
from pytest_medbench.items.base import Services
from pytest_medbench.items.dialogue import FREE_TURN, MAX_TURNS, run_dialogue, served_requests
from pytest_medbench.judge.evidence import BM25Corpus
from pytest_medbench.judge.llm import LLMJudge
from pytest_medbench.judge.offline import NO_RESULTS, OfflineAgent, OfflineJudge
from pytest_medbench.models.client import Completion
from pytest_medbench.models.errors import ModelCallError
from pytest_medbench.parsing.verdict import parse_verdict
from pytest_medbench.prompts.medr import UPSTREAM_FILES, MedrPrompts
from pytest_medbench.prompts.templates import template

CASES = {case.case_id: case for case in load_medr(FIXTURES)[0]}
ENDOCARDITIS = CASES["PMC90000003"]


def clinic(request: dict, number: int) -> Reply:
    """One server playing three parts, told apart by the system message."""
    system = request["messages"][0]["content"]
    prompt = request["messages"][-1]["content"]
    if system == template("judge_system"):
        if "JSON array" in prompt:
            item = '{"type": "laboratory", "test_name": "Blood cultures", "info_required": "organism"}'
            return Reply(content=f"```json\n[{item},]\n```")  # fenced, with a trailing comma
        if "<Step k>" in prompt:
            return Reply(
                content="<Step 1> Fever and a murmur in a drug user.\n<Step 2> Cultures grow S. aureus."
            )
        if "search keywords" in prompt:
            return Reply(content="endocarditis, Staphylococcus aureus")
        if "Citation, Repetition, Reasoning or Redundancy" in prompt:
            return Reply(content="Reasoning")
        if "Yes or No" in prompt:
            return Reply(content="Yes")
        return Reply(content="**Correct**")
    if system.startswith("You hold the complete test results"):
        return Reply(content="Blood cultures: Staphylococcus aureus in 3 of 3 sets.")
    answered = sum(m["role"] == "assistant" for m in request["messages"])
    if "Answer:" in prompt:  # single-turn layout (oracle diagnosis)
        return Reply(
            content="### Reasoning:\n<step 1> Fever and murmur.\n### Answer:\nInfective endocarditis"
        )
    if answered == 0:
        return Reply(
            content="### Chain of Thought:\n<step 1> Fever, murmur, injection drug use.\n"
            "### Additional Information Required:\n1. Blood cultures\n### Conclusion:\nSuspected endocarditis"
        )
    return Reply(
        content="### Chain of Thought:\n<step 1> Positive cultures.\n"
        "### Additional Information Required:\nNot required.\n### Conclusion:\nInfective endocarditis"
    )


def test_dialogues_against_a_local_model_agent_and_judge(run_suites, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    samples = tmp_path / "samples.jsonl"
    with OpenAIServer(clinic) as server:
        result, board = run_suites("-k", "PMC90000003", *served_by(server), f"--medbench-samples={samples}")
    assert result.ret == 0, result.stdout.str()[-3000:]
    tasks = {task["task"]: task for task in board["tasks"]}
    assert set(tasks) == {
        "oracle_diagnosis",
        "exam_1turn",
        "diagnosis_1turn",
        "exam_free_turn",
        "diagnosis_free_turn",
    }
    for task in tasks.values():
        assert task["errors"] == 0 and task["passed"] == 1
        assert all(metric["value"] == 100.0 for metric in task["metrics"].values()), task
        assert "not_judged" not in task
    # judge calls are cached like model calls: an identical verdict asked by a later item costs nothing
    assert sum(task["judge_tokens"]["prompt"] for task in tasks.values()) > 0
    assert set(tasks["oracle_diagnosis"]["metrics"]) == {
        "accuracy",
        "efficiency",
        "factuality",
        "completeness",
    }
    assert set(tasks["exam_1turn"]["metrics"]) == {"precision", "recall", "efficiency", "factuality"}
    judge = {"model": "openai/examiner", "approximate": False, "agent_model": "openai/examiner"}
    judge |= {"judges": [{"model": "openai/examiner", "api_base": server.api_base}], "temperature": 0.0}
    judge["agent_api_base"] = server.api_base  # the agent is the judge's model, at the judge's URL
    assert board["run"]["judge"] == {**judge, "prompts": "ours", "evidence": "none"}
    lines = {json.loads(line)["task"]: json.loads(line) for line in samples.read_text().splitlines()}
    dialogue = lines["diagnosis_free_turn"]["messages"]
    assert [m["role"] for m in dialogue] == ["system", "user", "assistant", "user", "assistant"]
    assert "Staphylococcus aureus in 3 of 3" in dialogue[3]["content"]
    model_calls = [r for r in server.requests if r["model"] == "doctor"]
    assert len(model_calls) == 1 + 2 + 2  # oracle; 1-turn dialogue run once for two items; free-turn likewise


def scripted_services(replies: list[str], agent=None) -> tuple[Services, list]:
    asked: list[list[dict]] = []

    def ask_model(messages, context):
        asked.append(list(messages))
        return Completion(replies[min(len(asked), len(replies)) - 1])

    services = Services(ask_model, OfflineJudge(), agent or OfflineAgent(), MedrPrompts(), {}, 0)
    return services, asked


def test_free_turn_stops_after_five_turns_with_a_notice_before_the_last():
    always_asks = "### Additional Information Required:\n1. Blood cultures\n### Conclusion:\nunsure"
    services, asked = scripted_services([always_asks])
    transcript = run_dialogue(FREE_TURN, ENDOCARDITIS, services, lambda turn: {})
    assert len(asked) == MAX_TURNS
    notice = template("medr_free_turn_notice")
    follow_ups = [m["content"] for m in transcript.messages if m["role"] == "user"][1:]
    assert [notice in text for text in follow_ups] == [False, False, False, True]
    assert len(transcript.turns) == 5 and "agent_reply" not in transcript.turns[-1]
    assert served_requests(transcript).count("Blood cultures") == 4  # the fifth request is never served


def test_free_turn_stops_when_nothing_more_is_required_and_memoises():
    services, asked = scripted_services(
        ["### Additional Information Required:\nNot required.\n### Conclusion:\nIE"]
    )
    first = run_dialogue(FREE_TURN, ENDOCARDITIS, services, lambda turn: {})
    again = run_dialogue(FREE_TURN, ENDOCARDITIS, services, lambda turn: {})
    assert len(asked) == 1 and first is again and served_requests(first) == ""


def test_offline_judge_and_agent():
    before, ancillary = ENDOCARDITIS.split_ancillary()
    scores = OfflineJudge().exam_scores("1. Blood cultures\n2. Chest x-ray", ancillary)
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert OfflineJudge().reasoning(["a"], "", "", "x") == {
        "efficiency": None,
        "factuality": None,
        "completeness": None,
    }
    assert "3 of 3 sets" in OfflineAgent().reply("Blood cultures please", before, ancillary)
    assert OfflineAgent().reply("1. Skull x-ray", before, ancillary) == NO_RESULTS


def test_a_judge_that_never_gives_a_verdict_is_an_error_not_a_score():
    replies = iter(["Incorrect.", "I think it is incorrect."])
    judge = LLMJudge(lambda messages: next(replies), MedrPrompts(), lambda query: "")
    with pytest.raises(ModelCallError) as caught:
        judge.diagnosis_correct("Endocarditis", "Infective endocarditis")
    assert caught.value.kind == "judge_unparseable"


@given(st.text(max_size=200))
def test_verdicts_are_labels_or_nothing(text):
    verdict = parse_verdict(text, ("Correct", "Wrong"))
    assert verdict in (None, "Correct", "Wrong")
    assert parse_verdict("Incorrect" + text, ("Correct", "Wrong")) != "Correct"
    assert parse_verdict("[Correct|Wrong]" + text, ("Correct", "Wrong")) is None


def test_bm25_ranks_the_relevant_passage_first(tmp_path):
    (tmp_path / "notes.md").write_text(
        "Endocarditis in people who inject drugs is often tricuspid and caused by Staphylococcus aureus.\n\n"
        "Graves disease causes hyperthyroidism with a diffuse goitre.\n\nGout is caused by urate crystals."
    )
    corpus = BM25Corpus(tmp_path)
    assert corpus.search("staphylococcus aureus endocarditis", k=1)[0].startswith("Endocarditis")
    assert corpus.search("no such words here") == []


@needs_shared(SHARED_DATA / "medrbench" / "instructions")
def test_upstream_templates_load_from_the_data_directory(run_suites, tmp_path):
    instructions = SHARED_DATA / "medrbench" / "instructions"
    samples = tmp_path / "samples.jsonl"
    case = load_medr(SHARED_DATA)[0][0]  # any case of the data directory's: none is named here
    result, board = run_suites(
        "--medbench-data",
        str(SHARED_DATA),
        "--medbench-prompts",
        "upstream",
        "--model",
        "medbench/oracle",
        "-k",
        f"oracle_diagnosis and {case.case_id}",
        "--medbench-samples",
        str(samples),
    )
    assert result.ret == 0
    upstream = (instructions / UPSTREAM_FILES["medr_oracle_diagnosis"]).read_text(encoding="utf-8").strip()
    sample = json.loads(samples.read_text().splitlines()[0])
    assert sample["messages"][1]["content"] == upstream.format(case=case.summary.strip())
    assert any(name.startswith("upstream:") for name in board["run"]["prompt_templates"])


@needs_shared(SHARED_DATA / "medrbench")
def test_released_outputs_replayed_through_the_plugin(run_suites, tmp_path):
    outputs = (
        SHARED_DATA / "medrbench" / "released-outputs" / "oracle_diagnosis_o3-mini_deepseek-r1_demo_100.json"
    )
    released = json.loads(outputs.read_text(encoding="utf-8"))
    replay = tmp_path / "r1.jsonl"
    replay.write_text(
        "".join(
            json.dumps(
                {"case": case, "setting": "oracle_diagnosis", "output": models["deepseek-r1"]["content"]}
            )
            + "\n"
            for case, models in released.items()
        )
    )
    samples = tmp_path / "samples.jsonl"
    _, board = run_suites(
        "--medbench-data",
        str(SHARED_DATA),
        "--model",
        f"replay:{replay}",
        "-k",
        "oracle_diagnosis",
        "--medbench-samples",
        str(samples),
    )
    parsed = [json.loads(line)["parsed"] for line in samples.read_text().splitlines()]
    assert len(parsed) == 100 and board["tasks"][0]["errors"] == 0
    assert sum(p["answer"] is not None for p in parsed) >= 99
    assert sum(len(p["steps"]) > 0 for p in parsed) >= 95


def test_a_case_without_the_ancillary_line_is_a_data_error_in_the_dialogue_settings(run_suites, tmp_path):
    data = tmp_path / "data" / "medrbench"
    data.mkdir(parents=True)
    cases = json.loads((FIXTURES / "medrbench" / "diagnosis_fixture_cases.json").read_text(encoding="utf-8"))
    record = cases["PMC90000001"]
    record["generate_case"]["case_summary"] = record["generate_case"]["case_summary"].replace(
        "Ancillary Tests", "Tests"
    )
    (data / "diagnosis_x.json").write_text(json.dumps({"PMC90000001": record}), encoding="utf-8")
    result, board = run_suites("--medbench-data", str(data.parent), "--model", "medbench/oracle")
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["oracle_diagnosis"]["passed"] == 1
    assert all(tasks[s]["errors"] == 1 for s in ("exam_1turn", "diagnosis_1turn", "exam_free_turn"))
    result.stdout.fnmatch_lines(["*case PMC90000001: no 'Ancillary Tests' line*"])


def treatment_clinic(request: dict, number: int) -> Reply:
    """The judge accepts the plan only when the evidence it was given backs it."""
    system, prompt = request["messages"][0]["content"], request["messages"][-1]["content"]
    if system == template("judge_system"):
        if "search keywords" in prompt:
            return Reply(content="myocardial infarction, primary PCI")
        if "Citation, Repetition" in prompt:
            return Reply(content="Redundancy")
        if "<Step k>" in prompt:
            return Reply(content="<Step 1> Reperfusion first.")
        if "Yes or No" in prompt:
            return Reply(content="No")
        return Reply(content="Correct" if "thrombolysis is acceptable" in prompt else "Wrong")
    return Reply(content="### Reasoning:\n<step 1> STEMI.\n### Answer:\nGive thrombolysis")


@pytest.mark.parametrize("source", ["hook", "folder"])
def test_evidence_reaches_the_treatment_judge(pytester, run_suites, tmp_path, monkeypatch, source):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    extra = []
    if source == "hook":
        pytester.makepyfile(
            evidence_plugin="def pytest_medbench_evidence(query, k, config):\n"
            "    return 'Where PCI is delayed, thrombolysis is acceptable (' + query + ')'\n"
        )
        pytester.syspathinsert()
        extra = ["-p", "evidence_plugin"]
    else:
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        (corpus / "stemi.md").write_text(
            "Primary PCI for myocardial infarction; when delayed, thrombolysis is acceptable."
        )
        extra = ["--medbench-evidence-dir", str(corpus)]
    with OpenAIServer(treatment_clinic) as server:
        _, board = run_suites("-k", "treatment and PMC90000101", *served_by(server), *extra)
    (task,) = board["tasks"]
    assert task["metrics"]["accuracy"]["value"] == 100.0
    assert task["metrics"]["efficiency"]["value"] == 0.0 and task["metrics"]["completeness"]["value"] == 0.0
    assert "factuality" in task["not_judged"]  # no step was labelled Reasoning: undefined, not zero
    assert board["run"]["judge"]["evidence"].startswith("hook:" if source == "hook" else "bm25:")


@needs_shared(SHARED_DATA / "medrbench")
def test_oracle_is_perfect_on_the_mirror_cases_in_all_six_settings(run_suites):
    result, board = run_suites("-m", "medr", "--medbench-data", str(SHARED_DATA), "--model=medbench/oracle")
    assert result.ret == 0
    assert {task["task"]: task["n"] for task in board["tasks"]} == {
        "oracle_diagnosis": 100,
        "exam_1turn": 100,
        "diagnosis_1turn": 100,
        "exam_free_turn": 100,
        "diagnosis_free_turn": 100,
        "treatment": 100,
    }
    for task in board["tasks"]:
        assert all(metric["value"] == 100.0 for metric in task["metrics"].values()), task["task"]
        assert task["subgroups"]["rare"]["n"] + task["subgroups"]["common"]["n"] == 100


# -- broken, empty and duplicated cases: each a named data error, counted in the leaderboard -------

SUMMARY = (
    "- **Patient Information:** a 52-year-old gardener\n"
    "- **Chief Complaint:** a red, hot shin for three days\n"
    "- **Physical Examination:** a tender, spreading erythema of the left shin\n"
    "- **Ancillary Tests:** White cell count 14 x10^9/L."
)


def own_case(answer: str = "Cellulitis", summary: str = SUMMARY) -> dict:
    """A diagnosis case of our own, in the MedR-Bench layout."""
    generated = {
        "case_summary": summary,
        "differential_diagnosis": "1. Cellulitis: a spreading red, hot area.",
        "final_diagnosis": answer,
        "diagnosis_results": answer,
    }
    return {"generate_case": generated, "body_category": [], "disorder_category": []}


def test_each_bad_case_of_one_file_is_its_own_record(run_suites, tmp_path):
    data = tmp_path / "data" / "medrbench"
    data.mkdir(parents=True)
    no_answer = own_case()
    del no_answer["generate_case"]["diagnosis_results"]
    wrong_type = own_case()
    wrong_type["generate_case"]["case_summary"] = 7
    document = {"OWN1": own_case(), "OWN2": no_answer, "OWN3": wrong_type, "OWN4": {"generate_case": {}}}
    (data / "diagnosis_mixed.json").write_text(json.dumps(document), encoding="utf-8")
    samples = tmp_path / "samples.jsonl"
    result, board = run_suites(
        "--medbench-data", str(data.parent), "--model", "medbench/oracle", f"--medbench-samples={samples}"
    )
    assert result.parseoutcomes()["failed"] == 3  # the three bad cases; OWN1 runs its five settings
    tasks = {task["task"]: task for task in board["tasks"]}
    assert (tasks["diagnosis_mixed"]["n"], tasks["diagnosis_mixed"]["errors"]) == (3, 3)
    assert tasks["oracle_diagnosis"]["passed"] == 1
    medr = {entry["benchmark"]: entry for entry in board["benchmarks"]}["medr"]
    assert medr["n"] == 5 + 3
    ids = [json.loads(line)["id"] for line in samples.read_text().splitlines()]
    broken = [i for i in ids if i.startswith("medrbench/diagnosis_mixed.json")]
    assert sorted(broken) == [f"medrbench/diagnosis_mixed.json#OWN{n}" for n in (2, 3, 4)]
    for case in ("OWN2", "OWN3", "OWN4"):  # each has its own pytest id, which -k finds by case id
        result.stdout.fnmatch_lines([f"FAILED *test_medr[[]diagnosis_mixed-load_error-{case}[]]*"])


def test_an_empty_ancillary_section_is_a_data_error_in_the_dialogue_settings(run_suites, tmp_path):
    data = tmp_path / "data" / "medrbench"
    data.mkdir(parents=True)
    empty = SUMMARY.rsplit("\n", 1)[0] + "\n- **Ancillary Tests:**\n  \n"
    (data / "diagnosis_x.json").write_text(json.dumps({"OWN5": own_case(summary=empty)}), encoding="utf-8")
    result, board = run_suites("--medbench-data", str(data.parent), "--model", "medbench/oracle")
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["oracle_diagnosis"]["passed"] == 1
    dialogues = ("exam_1turn", "diagnosis_1turn", "exam_free_turn", "diagnosis_free_turn")
    assert all(tasks[s]["errors"] == 1 and "precision" not in tasks[s]["metrics"] for s in dialogues)
    result.stdout.fnmatch_lines(["*case OWN5: the 'Ancillary Tests' section of the case summary is empty*"])


def test_an_exam_rule_shows_a_recall_that_was_not_scored_as_such():
    class NoRecall(OfflineJudge):
        def exam_scores(self, requests, ancillary):
            return {"precision": 0.0, "recall": None}

    from pytest_medbench.items.medr import MedrItem

    services, _ = scripted_services(["### Additional Information Required:\nX-ray\n### Conclusion:\nIE"])
    services.judge = NoRecall()
    item = MedrItem(ENDOCARDITIS, "exam_free_turn")
    score = item.score(item.solve(services), services)
    assert not score.passed and score.rule.startswith("precision 0.00, recall - ")


def test_a_case_id_written_twice_is_one_data_error_naming_the_files(tmp_path):
    data = tmp_path / "medrbench"
    data.mkdir()
    first, second = data / "diagnosis_a.json", data / "diagnosis_b.json"
    twice = json.dumps(own_case())
    # one id twice in one file (json.loads would keep the last copy) and in a second file, other gold
    first.write_text(f'{{"OWN6": {twice}, "OWN7": {twice}, "OWN6": {twice}}}', encoding="utf-8")
    second.write_text(json.dumps({"OWN7": own_case("Erysipelas"), "OWN8": own_case()}), encoding="utf-8")
    cases, errors = load_medr(tmp_path)
    assert sorted(case.case_id for case in cases) == ["OWN8"]  # no copy of a duplicated id runs
    by_case = {error.case: error for error in errors}
    assert sorted(by_case) == ["OWN6", "OWN7"] and all(e.path == first for e in errors)
    assert f"2 in {first}" in by_case["OWN6"].message
    assert f"1 in {first}, 1 in {second}" in by_case["OWN7"].message
    assert "none of them ran" in str(by_case["OWN7"])


def test_a_duplicated_case_fails_in_the_run_and_the_rest_runs(run_suites, tmp_path):
    data = tmp_path / "data" / "medrbench"
    data.mkdir(parents=True)
    (data / "diagnosis_a.json").write_text(json.dumps({"OWN9": own_case()}), encoding="utf-8")
    both = {"OWN9": own_case("Erysipelas"), "OWN10": own_case()}
    (data / "diagnosis_b.json").write_text(json.dumps(both), encoding="utf-8")
    result, board = run_suites("--medbench-data", str(data.parent), "--model", "medbench/oracle")
    assert result.parseoutcomes()["failed"] == 1 and result.parseoutcomes()["passed"] == 5
    result.stdout.fnmatch_lines(
        [f"*data error: {data / 'diagnosis_a.json'} at case OWN9:*{data / 'diagnosis_b.json'}*"]
    )
    tasks = {task["task"]: task for task in board["tasks"]}
    assert tasks["oracle_diagnosis"]["n"] == 1  # OWN10 only


def test_the_run_records_the_evidence_folders_contents_and_the_agents_endpoint(
    pytester, tmp_path, monkeypatch
):
    """Verdicts judged on other evidence, or a dialogue with another agent, are not comparable: the
    leaderboard tells them apart (before, a folder was named by its path alone, and the agent's
    endpoint not at all)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    boards = []
    for number, text in enumerate(("Warfarin needs INR checks.", "Heparin needs aPTT checks.")):
        (evidence / "notes.md").write_text(text)
        board = tmp_path / f"board{number}.json"
        result = pytester.runpytest(
            str(SUITES), "-p", "no:cacheprovider", "-k", "task57", "-q", "--model=medbench/oracle",
            f"--medbench-evidence-dir={evidence}", "--agent-model=openai/patient",
            "--judge-api-base=http://127.0.0.1:9/v1", f"--medbench-report={board}",
        )  # fmt: skip
        assert board.exists(), result.stdout.str()[-1500:] + result.stderr.str()[-1500:]
        boards.append(json.loads(board.read_text())["run"]["judge"])
    first, second = boards
    assert first["evidence"].startswith(f"bm25:{evidence} sha256:")
    assert first["evidence"] != second["evidence"]  # one folder, other contents
    assert first["agent_api_base"] == "http://127.0.0.1:9/v1"
