"""Multiple-choice answer extraction in the benchmark's 8 languages."""

from __future__ import annotations

import re

# Answer lead-ins used by the gold outputs (EN, ZH, JA, FR, RU, ES) and by models imitating them.
_PREFIXES = re.compile(
    r"^\s*(?:the\s+(?:right|correct)\s+answers?\s+(?:is|are)\s*:?"
    r"|正确答案是\s*[:：]?|正确答案\s*[:：]"
    r"|正しい答えは\s*[:：]?"
    r"|les?\s+bonnes?\s+réponses?\s+(?:est|sont)\s*:?|la\s+bonne\s+réponse\s+est\s*:?"
    r"|правильн\w*\s+ответ\w*\s*:?"
    r"|la\s+respuesta\s+correcta\s+es\s*:?"
    r"|answer\s*:)",
    re.IGNORECASE,
)
_LETTER = re.compile(r"^\s*[\(\[]?([A-E])(?![A-Za-z])")
_YES_NO_MAYBE = re.compile(r"^\W*(yes|no|maybe)\b", re.IGNORECASE)


def strip_answer_prefix(text: str) -> str:
    return _PREFIXES.sub("", text.strip(), count=1).strip()


def extract_letters(text: str) -> frozenset[str]:
    """Option letters a text answers with: the first letter, plus any further letters joined by commas
    (FrenchMedMCQA golds list several answers as "A: ..., C: ..."). Empty when there is no letter."""
    body = strip_answer_prefix(text)
    first = _LETTER.match(body)
    if not first:
        return frozenset()
    letters = {first.group(1)}
    for part in re.split(r"[,，]\s*", body)[1:]:
        more = _LETTER.match(part)
        if more and re.match(r"^\s*[\(\[]?[A-E]\s*[\)\]]?\s*[:：.]", part):
            letters.add(more.group(1))
    return frozenset(letters)


def extract_yes_no_maybe(text: str) -> str | None:
    """PubMedQA's answer: the first word when it is yes, no or maybe."""
    match = _YES_NO_MAYBE.match(strip_answer_prefix(text))
    return match.group(1).lower() if match else None
