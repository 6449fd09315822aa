"""The offline judge: a deterministic fuzzy match against the gold answer, used when no judge model
is given, so MedR-Bench runs with no API at all. Its verdicts are approximate and reported as such.
"""

from __future__ import annotations

import re

MATCH_THRESHOLD = 85.0
_STOPWORDS = frozenset(
    {
        "a", "an", "and", "the", "of", "with", "to", "in", "on", "for", "by", "due", "secondary",
        "associated", "likely", "probable", "possible", "diagnosis", "final", "patient", "disease",
    }
)  # fmt: skip


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
