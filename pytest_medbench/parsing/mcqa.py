"""Multiple-choice answer extraction in the benchmark's 8 languages."""

from __future__ import annotations

import re
from typing import Protocol

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
# the parts of a list of answers: "A, C", "A,C", "A et C", "A: x, C: y"
_PARTS = re.compile(r"\s*[,，;；]\s*|\s+(?:et|and|&)\s+", re.IGNORECASE)
# a part that is a letter alone: "C", "(C)", "[C]", "C)", "C."
_BARE = re.compile(r"^[\(\[]?([A-E])[\)\]]?\.?$")
# a part that is a letter then words, which ends a list of bare letters: "C sont correctes", "(C) are"
_LEADING = re.compile(r"^[\(\[]?([A-E])[\)\]]?\s+\w")
# a part that is a letter labelling an option's text, and how it is labelled: "C: x", "C. x", "C) x",
# "(C) x"; then the text's first character
_LABELLED = re.compile(r"^(?:([\(\[])[A-E][\)\]]|[A-E]\s*([:：.)）]))\s*(\S)")

# MedS-Bench MCQA tasks whose questions can have several right answers (FrenchMedMCQA); every other
# MedS-Bench MCQA task has one, and its answer is the first option letter
SEVERAL_ANSWER_TASKS = frozenset({"task60"})


class _Task(Protocol):
    task_id: str
    benchmark: str


def several_answers(spec: _Task) -> bool:
    """Whether an MCQA task's answers are sets of letters: FrenchMedMCQA, and declared (own) tasks,
    whose golds may list several letters."""
    return spec.benchmark != "meds" or spec.task_id in SEVERAL_ANSWER_TASKS


def strip_answer_prefix(text: str) -> str:
    return _PREFIXES.sub("", text.strip(), count=1).strip()


def first_letter(text: str) -> str | None:
    """A single-answer task's answer: the first option letter A-E once a lead-in is removed."""
    match = _LETTER.match(strip_answer_prefix(text))
    return match.group(1) if match else None


def extract_letters(text: str) -> frozenset[str]:
    """Option letters a text answers with; empty when there is no letter.

    The first letter, then more letters only from a list whose form is unambiguous (its parts split
    on commas, semicolons, "et", "and", "&"):

    - a list of bare letters ("A, C", "A,C", "(A), (C)", "A et C") gives every letter of its leading
      run of bare parts; a part that is a letter then words ("A, C sont les bonnes réponses", "A et
      C sont correctes") gives its letter and ends the run;
    - a list of labelled options ("A: x, C: y", FrenchMedMCQA's golds) gives the parts labelled as
      the first one is (a letter then ":" here); with "." a part counts only when its text starts
      with an uppercase letter ("A. Héparine, C. Warfarine"), so a letter in an option's text ("D:
      Hepatitis A, B.", "D: S. aureus, E. coli", "A. S. aureus, E. coli") is not read as an answer.
    """
    body = strip_answer_prefix(text)
    first = _LETTER.match(body)
    if not first:
        return frozenset()
    parts = [part.strip() for part in _PARTS.split(body)]
    if _BARE.match(parts[0]):
        letters = []
        for part in parts:
            if bare := _BARE.match(part):
                letters.append(bare.group(1))
            elif leading := _LEADING.match(part):
                letters.append(leading.group(1))
                break
            else:
                break
        return frozenset(letters)
    letters = [first.group(1)]
    labelled = _LABELLED.match(parts[0])
    if labelled:
        for part in parts[1:]:
            more = _LABELLED.match(part)
            if more and _form(more) == _form(labelled) and (_form(more) != "." or more.group(3).isupper()):
                letters.append(_LETTER.match(part).group(1))
    return frozenset(letters)


def _form(labelled: re.Match[str]) -> str:
    """How a labelled part labels its option: "(" (also "["), ":", "." or ")"."""
    return {"[": "(", "：": ":", "）": ")"}.get(mark := labelled.group(1) or labelled.group(2), mark)


def mcqa_answer(text: str, *, several: bool) -> str | None:
    """The option answer as one string: the first letter ("B"), or with ``several`` the sorted letters
    comma-joined ("A,C"); None when there is none."""
    if several:
        return ",".join(sorted(extract_letters(text))) or None
    return first_letter(text)


def extract_yes_no_maybe(text: str) -> str | None:
    """PubMedQA's answer: the first word when it is yes, no or maybe."""
    match = _YES_NO_MAYBE.match(strip_answer_prefix(text))
    return match.group(1).lower() if match else None
