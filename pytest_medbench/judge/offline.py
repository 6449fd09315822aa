"""The offline judge and patient agent: deterministic fuzzy matching (rapidfuzz), used when no judge
model is given, so MedR-Bench runs with no API at all. Their scores are approximate and reported as
such; the reasoning metrics need a model to judge them and are reported as not judged.
"""

from __future__ import annotations

import re
from typing import Any

from ..data.medr import ancillary_entries
from ..parsing.medr import says_not_required

MATCH_THRESHOLD = 85.0
_STOPWORDS = frozenset(
    "a an and the of with to in on for by due secondary associated likely probable possible diagnosis final "  # noqa: SIM905
    "patient disease".split()
)


def normalise(text: str) -> str:
    """Lowercase, punctuation to spaces, stop words dropped: what is left names the condition."""
    words = re.findall(r"[\w'-]+", text.lower())
    return " ".join(word for word in words if word not in _STOPWORDS)


def similarity(prediction: str, gold: str) -> float:
    """0-100: how fully the prediction's words cover the gold answer's (rapidfuzz token-set ratio)."""
    from rapidfuzz import fuzz

    predicted, expected = normalise(prediction), normalise(gold)
    if not predicted or not expected:
        return 0.0
    return float(fuzz.token_set_ratio(predicted, expected))


def offline_verdict(prediction: str | None, gold: str) -> tuple[bool, float]:
    """(correct, similarity): correct when the similarity reaches MATCH_THRESHOLD."""
    score = similarity(prediction or "", gold)
    return score >= MATCH_THRESHOLD, score


ITEM_MATCH_THRESHOLD = 80.0
NO_RESULTS = "No results relevant to this request are available."
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")


def request_items(request: str) -> list[str]:
    """The separate things a free-text request asks for: list entries, else comma/semicolon parts."""
    lines = [_LIST_MARK.sub("", line).strip() for line in request.splitlines()]
    lines = [line for line in lines if line and not says_not_required(line)]
    if len(lines) == 1:
        lines = [part.strip() for part in re.split(r"[;,]", lines[0]) if part.strip()]
    return lines


def _related(item: str, entry: tuple[str, str]) -> bool:
    """A requested item and a hidden finding match when either names the other (fuzzy, normalised)."""
    from rapidfuzz import fuzz

    wanted, (name, line) = normalise(item), entry
    if not wanted:
        return False
    return max(fuzz.partial_ratio(normalise(name), wanted), fuzz.partial_ratio(wanted, normalise(line))) >= (
        ITEM_MATCH_THRESHOLD
    )


class OfflineJudge:
    approximate = True

    def diagnosis_correct(self, predicted: str, gold: str) -> bool:
        return offline_verdict(predicted, gold)[0]

    def treatment_correct(self, predicted: str, gold: str, case: Any) -> bool:
        return offline_verdict(predicted, gold)[0]

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
