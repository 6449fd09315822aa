"""The offline judge and patient agent, used when no judge model is given, so MedR-Bench runs with no
API at all. Their scores are approximate and reported as such; the reasoning metrics need a model to
judge them and are reported as not judged.

The offline judge is a conservative floor: an answer is correct only when it names one diagnosis or
plan that equals the reference after normalisation it can be sure of (case, punctuation, whitespace,
British/American spelling, Roman numerals after "type", and the small abbreviation table below). A
negation, a hedge or list of alternatives, or any other difference ("stable" against "unstable
angina", "type 2" against "type 1") makes it incorrect. Requested exams are still matched fuzzily
(rapidfuzz): an exam list is a list by nature.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from ..data.medr import ancillary_entries
from ..parsing.medr import says_not_required

# Abbreviations expanded word by word, only where they have one meaning in a diagnosis or plan.
ABBREVIATIONS = {
    "ami": "acute myocardial infarction",
    "mi": "myocardial infarction",
    "copd": "chronic obstructive pulmonary disease",
    "dvt": "deep vein thrombosis",
    "pe": "pulmonary embolism",
    "sle": "systemic lupus erythematosus",
    "uti": "urinary tract infection",
    "tb": "tuberculosis",
    "ra": "rheumatoid arthritis",
    "ms": "multiple sclerosis",
    "ckd": "chronic kidney disease",
    "aki": "acute kidney injury",
    "dm": "diabetes mellitus",
    "t1dm": "type 1 diabetes mellitus",
    "t2dm": "type 2 diabetes mellitus",
    "hiv": "human immunodeficiency virus",
    "ie": "infective endocarditis",
    "ibd": "inflammatory bowel disease",
    "nhl": "non hodgkin lymphoma",
    "aml": "acute myeloid leukemia",
    "cml": "chronic myeloid leukemia",
    "cll": "chronic lymphocytic leukemia",
}
# British spellings, word parts rewritten to the American ones.
SPELLINGS = (
    ("haem", "hem"),
    ("aem", "em"),
    ("oedema", "edema"),
    ("oesophag", "esophag"),
    ("tumour", "tumor"),
)
_ROMAN_TYPE = re.compile(r"\btype (i{1,3}|iv)\b")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}
_LEAD_IN = re.compile(
    r"^(?:final |most likely |working |primary )?(?:diagnosis|treatment plan|plan|answer)\s*[:：]\s*", re.I
)


def normalise(text: str) -> str:
    """The answer as the offline judge compares it: NFKC, lowercase, punctuation to spaces, spelling,
    "type ii" -> "type 2", abbreviations expanded, a leading "Diagnosis:" label dropped."""
    text = re.sub(r"[*_`#]", "", unicodedata.normalize("NFKC", text)).strip()
    text = _LEAD_IN.sub("", text).lower()
    text = " ".join(re.sub(r"[^\w]+", " ", text).split())
    for british, american in SPELLINGS:
        text = text.replace(british, american)
    text = _ROMAN_TYPE.sub(lambda match: f"type {_ROMAN[match.group(1)]}", text)
    return " ".join(ABBREVIATIONS.get(word, word) for word in text.split())


def offline_verdict(prediction: str | None, gold: str) -> bool:
    """Correct only when the prediction, normalised, is the normalised reference itself."""
    predicted, expected = normalise(prediction or ""), normalise(gold)
    return bool(predicted) and predicted == expected


ITEM_MATCH_THRESHOLD = 80.0
_STOPWORDS = frozenset(
    "a an and the of with to in on for by due secondary associated likely probable possible diagnosis final "  # noqa: SIM905
    "patient disease".split()
)
NO_RESULTS = "No results relevant to this request are available."
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def request_items(request: str) -> list[str]:
    """The separate things a free-text request asks for: list entries, else comma/semicolon parts."""
    lines = [_LIST_MARK.sub("", line).strip() for line in request.splitlines()]
    lines = [line for line in lines if line and not says_not_required(line)]
    if len(lines) == 1:
        lines = [part.strip() for part in re.split(r"[;,]", lines[0]) if part.strip()]
    return lines


def _words(text: str) -> str:
    """Lowercase, punctuation to spaces, stop words dropped: what is left names the test."""
    words = re.findall(r"[\w'-]+", text.lower())
    return " ".join(word for word in words if word not in _STOPWORDS)


def _related(item: str, entry: tuple[str, str]) -> bool:
    """A requested item and a hidden finding match when either names the other (fuzzy, normalised)."""
    from rapidfuzz import fuzz

    wanted, (name, line) = _words(item), entry
    if not wanted:
        return False
    return max(fuzz.partial_ratio(_words(name), wanted), fuzz.partial_ratio(wanted, _words(line))) >= (
        ITEM_MATCH_THRESHOLD
    )


class OfflineJudge:
    approximate = True

    def diagnosis_correct(self, predicted: str, gold: str) -> bool:
        return offline_verdict(predicted, gold)

    def treatment_correct(self, predicted: str, gold: str, case: Any) -> bool:
        return offline_verdict(predicted, gold)

    def verdict(
        self, answer: str, reference: str, question: str | None = None, rubric: str | None = None
    ) -> bool:
        """Without a judge model: the normalised answer must be the normalised reference itself."""
        return offline_verdict(answer, reference)

    def exam_scores(self, requests: str, ancillary: str) -> dict[str, Any]:
        requested = request_items(requests)
        entries = ancillary_entries(ancillary)
        if not requested or not entries:
            return {"precision": 0.0, "recall": 0.0 if entries else None, "requested": requested}
        hits = [any(_related(item, entry) for entry in entries) for item in requested]
        found = [any(_related(item, entry) for item in requested) for entry in entries]
        return {"precision": sum(hits) / len(hits), "recall": sum(found) / len(found), "requested": requested}

    def reasoning(self, steps: list[str], case: str, goal: str, reference_reasoning: str) -> dict[str, Any]:
        return {"efficiency": None, "factuality": None, "completeness": None}


class OfflineAgent:
    """Serves the hidden findings whose test names the request mentions (fuzzy), else says none."""

    def reply(self, request: str, case: str, ancillary: str) -> str:
        requested = request_items(request)
        entries = ancillary_entries(ancillary)
        lines = [entry[1] for entry in entries if any(_related(item, entry) for item in requested)]
        return "\n".join(lines) or NO_RESULTS
