"""Metric rules pinned by hand-made pairs, and properties that must hold for any text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_medbench import metrics
from pytest_medbench.data.meds_tasks import TASKS, TaskSpec
from pytest_medbench.metrics import accuracy, overlap, sets
from pytest_medbench.metrics.meds import score_meds
from pytest_medbench.parsing.mcqa import mcqa_answer
from pytest_medbench.report.audit import gold_label
from pytest_medbench.report.stats import stratum, wilson


@pytest.mark.parametrize(
    ("output", "gold", "official", "strict", "several"),
    [
        (
            "The right answer is B: MRI",
            "The right answer is B: Magnetic resonance imaging",
            True,
            True,
            False,
        ),
        (
            "b",
            "The right answer is B: MRI",
            True,
            False,
            False,
        ),  # strict reads upper-case option letters only
        (
            "正确答案是 D: 维生素K",
            "正确答案是 D: 维生素K",
            False,
            True,
            False,
        ),  # localised gold: official never scores
        (
            "The right answer is E: x",
            "The right answer is E: x",
            False,
            True,
            False,
        ),  # E impossible officially
        ("", "The right answer is A: x", False, False, False),
        # one answer: the first letter, whatever follows
        ("D", "The right answer is D: Hepatitis A, B.", True, True, False),
        ("B: Aspirin, C: heparin", "The right answer is B: Aspirin", True, True, False),
        ("Les bonnes réponses est A: x", "Les bonnes réponses est A: x, C: y", False, True, False),
        # several answers (FrenchMedMCQA): the set of letters
        ("Les bonnes réponses est A: x, C: y", "Les bonnes réponses est A: x, C: y", False, True, True),
        ("Les bonnes réponses est A: x", "Les bonnes réponses est A: x, C: y", False, False, True),
        ("A et C", "Les bonnes réponses est A: x, C: y", False, True, True),
        ("D", "The right answer is D: Hepatitis A, B.", True, True, True),  # "A", "B." are option text
    ],
)
def test_mcqa_rules(output, gold, official, strict, several):
    assert accuracy.official_mcqa(output, gold, pubmedqa=False) is official
    assert accuracy.strict_mcqa(output, gold, pubmedqa=False, several=several) is strict


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("A, C", "A,C"),
        ("A,C", "A,C"),
        ("(A), (C)", "A,C"),
        ("A et C.", "A,C"),
        ("Les bonnes réponses sont A, C", "A,C"),
        ("Les bonnes réponses est A: Héparine, C: Warfarine", "A,C"),
        ("A. Héparine, C. Warfarine", "A,C"),  # labelled alike: "." both times, then an uppercase
        ("A. S. aureus, E. coli", "A"),  # "E." before lowercase "coli" is the option's text
        ("A, C sont les bonnes réponses", "A,C"),  # a letter then words ends the list, counted
        ("A et C sont correctes", "A,C"),
        ("The right answer is D: Hepatitis A, B.", "D"),  # the text's "A" and "B." are no answer
        ("D: infection by S. aureus, E. coli", "D"),  # labelled with ":", so "E. coli" is text
        ("B: Aspirin, C: heparin", "B,C"),
        ("A, C'est tout", "A"),  # "C'est" is a word, not a letter
        ("no idea", None),
    ],
)
def test_parse_mcqa_reads_a_letter_list_and_no_letter_from_option_text(text, letters):
    assert metrics.parse_mcqa(text) == letters


@given(text=st.text(alphabet="ABCDEFabc ,.:;()etsonr\n", max_size=40))
def test_parse_mcqa_is_frenchmedmcqa_s_rule(text):
    assert metrics.parse_mcqa(text) == mcqa_answer(text, several=True)


def test_the_parsed_mcqa_answer_is_the_task_rule_s():
    # single-answer tasks show (and are scored on) the first letter; FrenchMedMCQA the set
    single = score_meds(
        TASKS["task57"], "B: Aspirin, C: heparin", "The right answer is B: Aspirin", mode="strict"
    )
    assert single.parsed == {"answer": "B"} and single.passed
    french = score_meds(TASKS["task60"], "A et C", "Les bonnes réponses est A: x, C: y", mode="strict")
    assert french.parsed == {"answer": "A,C"} and french.passed
    # the audit's gold label follows the same rule
    assert gold_label(TASKS["task57"], "The right answer is B: x, C: y") == "B"
    assert gold_label(TASKS["task60"], "Les bonnes réponses est A: x, C: y") == "A,C"


def test_declared_mcqa_tasks_compare_sets_of_letters():
    spec = TaskSpec("own", "own", "mcqa", benchmark="custom")  # its golds may list several letters
    assert score_meds(spec, "A, C", "A: x, C: y", mode="strict").passed
    assert not score_meds(spec, "A", "A: x, C: y", mode="strict").passed


def test_declared_multilabel_keeps_its_declared_labels_in_strict_mode():
    spec = TaskSpec("own", "own", "multilabel", benchmark="custom", labels=("pneumonia", "sepsis", "shock"))
    labels = ("pneumonia", "sepsis", "shock")
    score = score_meds(spec, "pneumonia", "pneumonia", mode="strict", label_set=labels)
    # every declared label is counted on every item, used or not (macro over the declared set)
    assert set(score.counts) == {f"{label}|{k}" for label in labels for k in ("tp", "fp", "fn")}


def test_pubmedqa_maybe_only_scores_strictly():
    assert not accuracy.official_mcqa("maybe", "maybe", pubmedqa=True)
    assert accuracy.strict_mcqa("Maybe.", "maybe", pubmedqa=True)
    assert accuracy.official_mcqa("yes, because", "yes", pubmedqa=True)


def test_diagnosis_substring_quirk_and_its_strict_fix():
    gold = "The diagnosis result is stable angina."
    assert accuracy.official_label_prefix(
        "The diagnosis result is unstable angina.", gold, "The diagnosis result is"
    )
    assert not accuracy.strict_label_prefix(
        "The diagnosis result is unstable angina.", gold, "The diagnosis result is"
    )
    assert accuracy.strict_label_prefix(
        "The diagnosis result is Stable angina", gold, "The diagnosis result is"
    )


def test_ner_official_chops_the_last_character_on_both_sides():
    assert sets.official_entities("aspirin, clopidogrel.") == {"aspirin", "clopidogre"}
    assert sets.official_entities("There is no related enetity.") == set()
    assert sets.official_entities("There is no related entity.") == {"there is no related entit"}
    # the same entities in another order cost two false positives and two false negatives
    counts = sets.entity_counts(
        sets.official_entities("clopidogrel, aspirin."), sets.official_entities("aspirin, clopidogrel.")
    )
    assert counts == {"tp": 0, "fp": 2, "fn": 2}
    assert sets.strict_entities("Clopidogrel, aspirin.") == {"aspirin", "clopidogrel"}
    assert sets.strict_entities("There is no related entity.") == set()


def test_first_line_and_nli_rules():
    assert accuracy.official_first_line("1, 2", "1")  # containment: "1" is in "1, 2"
    assert not accuracy.strict_first_line("1, 2", "2")
    assert not accuracy.official_first_line("", "no")
    assert accuracy.official_nli("entailment or contradiction or neutral", "Entailment")
    assert not accuracy.strict_nli("One of entailment, contradiction or neutral", "Entailment")
    # naming all three scores officially; strictly it is no answer, leading label or not
    assert not accuracy.strict_nli("entailment or contradiction or neutral", "Entailment")
    assert accuracy.strict_nli("Contradiction: the x-ray was clear", "Contradiction")


def test_outcome_rule():
    assert accuracy.official_outcome("True", "True")
    assert not accuracy.official_outcome("True or False", "True")
    assert not accuracy.official_outcome("yes", "maybe")
    assert not accuracy.strict_outcome("Admission likely: true", "True")


def test_rouge_l_follows_the_rouge_package():
    # distinct-token union LCS: ref tokens {the, cat, sat, down} (4), hyp {the, cat, sat} (3), lcs 3
    assert overlap.rouge_l("the cat sat", "the cat sat down") == pytest.approx(2 * 1 * 0.75 / 1.75, abs=1e-6)
    assert overlap.rouge_l("The cat", "the cat") == pytest.approx(0.5, abs=1e-6)  # case-sensitive
    assert overlap.rouge_l("", "the cat") is None and overlap.rouge_l("...", "x") is None


def test_bleu_1_is_brevity_penalised_unigram_precision():
    # hyp 2 tokens, both in ref of 4 tokens: precision 1, brevity penalty exp(1 - 4/2)
    assert overlap.bleu_1("the cat", "the cat sat down") == pytest.approx(2.718281828**-1, abs=1e-6)
    assert overlap.bleu_1("dog", "cat") == 0.0  # nltk: no matching unigram at all gives 0
    assert overlap.bleu_1("", "cat") == 0.0


NLTK_WITHOUT_SCIPY_STATS = """
import sys
from pytest_medbench.metrics import overlap
bleu = overlap.bleu_1("the cat", "the cat sat down")
print("BLEU", round(bleu, 9), "SCIPY.STATS LOADED", "scipy.stats" in sys.modules)
from nltk.metrics.association import BigramAssocMeasures
from scipy.stats import fisher_exact
scipy_value = fisher_exact([[3, 2], [3, 12]], alternative="less")[1]
print("FISHER", BigramAssocMeasures.fisher(3, (5, 6), 20) == scipy_value)
"""


def test_nltk_is_loaded_without_scipy_stats_and_still_answers_as_before(tmp_path):
    """nltk's package import pulls in scipy.stats (0.5 s) for a measure BLEU never uses: a fresh
    process scores BLEU-1 without loading it, and nltk's Fisher measure, the one user of it, still
    gives scipy's value (its contingency table by hand: 3, 5 - 3, 6 - 3, 20 - 3 - 2 - 3)."""
    import math

    from conftest import run_python

    done = run_python("-c", NLTK_WITHOUT_SCIPY_STATS, cwd=tmp_path)
    bleu = round(math.exp(-1), 9)  # both tokens match, brevity penalty exp(1 - 4/2)
    assert f"BLEU {bleu} SCIPY.STATS LOADED False" in done.stdout, done.stdout + done.stderr
    assert "FISHER True" in done.stdout


FAKE_SKLEARN = {  # what nltk's package import takes from scikit-learn, which imports scipy.stats
    "__init__.py": "import scipy.stats\n",
    "feature_extraction.py": "class DictVectorizer:\n    pass\n",
    "preprocessing.py": "class LabelEncoder:\n    pass\n",
}
NLTK_WITH_SKLEARN = """
from pytest_medbench.metrics import overlap
overlap.bleu_1("the cat", "the cat sat down")
from nltk.classify import scikitlearn
print("SKLEARN CLASSES", hasattr(scikitlearn, "DictVectorizer"), hasattr(scikitlearn, "LabelEncoder"))
"""


def test_what_nltk_imports_from_other_packages_still_gets_scipy_stats(tmp_path):
    """Only nltk's own modules are refused scipy.stats while it loads: scikit-learn (nltk imports it
    under a ``try`` when installed) needs it, and refused, it would fail silently, half-imported,
    leaving nltk's SklearnClassifier without its classes (NameError: LabelEncoder on first use)."""
    from conftest import run_python

    (tmp_path / "sklearn").mkdir()
    for name, text in FAKE_SKLEARN.items():
        (tmp_path / "sklearn" / name).write_text(text)
    done = run_python("-c", NLTK_WITH_SKLEARN, cwd=tmp_path, path=(tmp_path,))
    assert "SKLEARN CLASSES True True" in done.stdout, done.stdout + done.stderr


def test_corpus_f1_and_wilson():
    def corpus(counts: list[dict]) -> dict[str, float]:
        items = [{"scores": {}, "counts": c} for c in counts]
        return {name: stratum(items, name).value() for name in ("precision", "recall", "f1")}

    assert corpus([{"tp": 2, "fp": 1, "fn": 0}, {"tp": 0, "fp": 0, "fn": 2}]) == pytest.approx(
        {"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7}
    )
    items = [{"a|tp": 1, "a|fp": 0, "a|fn": 0, "b|tp": 0, "b|fp": 1, "b|fn": 1}]
    assert corpus(items) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    low, high = wilson(1.0, 10)
    assert high == pytest.approx(1.0) and 0.69 < low < 0.73


TEXT = st.text(max_size=300)


@given(output=TEXT, gold=TEXT)
def test_every_meds_scorer_survives_any_text_and_stays_in_bounds(output, gold):
    for spec in TASKS.values():
        if spec.language in ("zh", "ja"):
            continue  # tokenizer start-up per example is slow; covered below
        for mode in ("official", "strict"):
            result = score_meds(spec, output, gold, mode=mode, label_set=("inducing angiogenesis", "x"))
            for value in result.scores.values():
                assert value is None or 0.0 <= value <= 1.0 + 1e-9


@given(text=TEXT)
def test_a_perfect_prediction_scores_the_maximum(text):
    gold = f"The right answer is C: {text}"
    assert accuracy.strict_mcqa(gold, gold, pubmedqa=False)
    assert accuracy.official_mcqa(gold, gold, pubmedqa=False)
    if text.strip(" .") and " " in text.strip():
        value = overlap.rouge_l(text, text)
        assert value is None or value == pytest.approx(1.0, abs=1e-6)


@given(text=st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x4E50), max_size=40))
def test_cjk_tokenized_metrics_never_crash(text):
    for language in ("zh", "ja"):
        assert 0.0 <= overlap.bleu_1(text, "患者需要手术", language) <= 1.0


def test_patient_profile_strict_parses_gender_and_age():
    gold = "Gender: F\n\nAge: \"[[18.0, 'year']]\""
    assert accuracy.strict_patient_profile("Gender: Female\nAge: [[18, 'years']]", gold)
    assert not accuracy.strict_patient_profile("Gender: M\nAge: [[18.0, 'year']]", gold)
    assert not accuracy.strict_patient_profile("Gender: F", gold)
    assert not accuracy.official_extraction("Gender: Female\nAge: [[18, 'years']]", gold)


def test_an_empty_ner_output_counts_its_misses_in_both_modes():
    # issue 13: the released code scores a blank output as the entity set {''} (one false positive);
    # this test used to pin the old defect of skipping the row
    spec = TASKS["task125"]
    official = score_meds(spec, "", "aspirin, clopidogrel.", mode="official")
    strict = score_meds(spec, "", "aspirin, clopidogrel.", mode="strict")
    assert official.counts == {"tp": 0, "fp": 1, "fn": 2} and official.scores["f1"] == 0.0
    assert strict.counts == {"tp": 0, "fp": 0, "fn": 2}


def test_summarization_category_averages_the_four_primary_tasks():
    from pytest_medbench.report.aggregate import aggregate
    from pytest_medbench.report.records import ItemRecord

    def record(task: str, rouge: float) -> ItemRecord:
        return ItemRecord("meds", task, "summarization", "0", scores={"rouge_l": rouge}, passed=True)

    board = aggregate([record("task114", 0.4), record("task110", 0.2), record("task83", 0.9)])
    (category,) = board["categories"]
    assert category["metrics"]["rouge_l"]["value"] == pytest.approx(30.0)  # task83 (CT) not averaged in
    assert category["n"] == 3


def test_huge_outputs_score_without_crashing():
    huge = "aspirin, " * 20_000 + "The right answer is A: x. " * 2_000
    for spec in TASKS.values():
        if spec.language in ("zh", "ja"):
            continue
        result = score_meds(spec, huge, "aspirin.", mode="strict")
        assert all(v is None or 0.0 <= v <= 1.0 + 1e-9 for v in result.scores.values())
