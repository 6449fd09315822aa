"""The offline judge is a conservative floor: the adversarial answers a review found it accepting are
incorrect, and only the reference itself, up to the normalisation it documents, is correct."""

from __future__ import annotations

import pytest

from pytest_medbench.judge.offline import OfflineJudge

ENDOCARDITIS = "Infective endocarditis"
ADVERSARIAL = [  # (prediction, reference): each must be judged incorrect
    ("Pneumonia, infective endocarditis, pyelonephritis", ENDOCARDITIS),  # a list holding the reference
    ("Infective endocarditis or septic thrombophlebitis", ENDOCARDITIS),  # a hedge
    ("Infective endocarditis / rheumatic fever", ENDOCARDITIS),
    ("Differential: infective endocarditis; lupus", ENDOCARDITIS),
    ("not endocarditis", "Endocarditis"),  # negated
    ("Infective endocarditis ruled out", ENDOCARDITIS),
    ("No infective endocarditis", ENDOCARDITIS),
    ("stable angina", "unstable angina"),
    ("Type 2 diabetes mellitus", "Type 1 diabetes mellitus"),
    ("T2DM", "Type 1 diabetes mellitus"),
    ("Endocarditis", ENDOCARDITIS),  # less specific than the reference: not sure, so incorrect
    ("", ENDOCARDITIS),
]
EQUIVALENT = [  # (prediction, reference): the same answer, written differently
    ("infective endocarditis.", ENDOCARDITIS),
    ("  INFECTIVE   Endocarditis ", ENDOCARDITIS),
    ("**Diagnosis:** Infective endocarditis", ENDOCARDITIS),
    ("Type II diabetes mellitus", "Type 2 diabetes mellitus"),
    ("T2DM", "Type 2 diabetes mellitus"),
    ("Acute MI", "Acute myocardial infarction"),
    ("Subarachnoid haemorrhage", "Subarachnoid hemorrhage"),
    ("Non-Hodgkin lymphoma", "Non Hodgkin lymphoma"),
]


@pytest.mark.parametrize(("prediction", "reference"), ADVERSARIAL)
def test_adversarial_answers_are_incorrect(prediction, reference):
    judge = OfflineJudge()
    assert judge.diagnosis_correct(prediction, reference) is False
    assert judge.treatment_correct(prediction, reference, None) is False


@pytest.mark.parametrize(("prediction", "reference"), EQUIVALENT)
def test_the_reference_rewritten_is_correct(prediction, reference):
    assert OfflineJudge().diagnosis_correct(prediction, reference) is True


def test_its_scores_stay_marked_approximate():
    assert OfflineJudge.approximate is True
