"""The honest non-LLM baseline: the floor any model on the leaderboard should clear.

It sees what a model sees (the item's input) plus the task's majority gold label, the usual
majority-class floor for classification tasks.
"""

from __future__ import annotations

import re

_OPTION = re.compile(
    r"(?:^|\t|\n)\s*([A-E])\s*[:：.]\s*(.+?)(?=\t\s*[A-E]\s*[:：.]|\n\s*[A-E]\s*[:：.]|$)", re.S
)
_OPTIONS_LABEL = re.compile(
    r"^(?:Options|选项|オプション|Opciones|Варианты|Options de réponse)\s*[:：]", re.M
)
_CHIEF_COMPLAINT = re.compile(r"Chief Complaint\W*\s*(.+)")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def parse_options(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(question stem, [(letter, option text)]) from an MCQA input; no options gives an empty list."""
    label = _OPTIONS_LABEL.search(text)
    if not label:
        return text, []
    stem, options_text = text[: label.start()], text[label.end() :]
    options = [(letter, body.strip()) for letter, body in _OPTION.findall(options_text)]
    return stem, options


def best_fuzzy_option(text: str) -> str | None:
    """The option whose wording overlaps the question most, as "The right answer is X: text"."""
    from rapidfuzz import fuzz

    stem, options = parse_options(text)
    if not options:
        return None
    letter, body = max(options, key=lambda option: fuzz.token_set_ratio(stem, option[1]))
    return f"The right answer is {letter}: {body}"


def lead(text: str, max_words: int = 40) -> str:
    """The first sentence of the input, at most ``max_words`` words: the classic lead baseline."""
    first = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    return " ".join(first.split()[:max_words])


def chief_complaint(case_summary: str) -> str | None:
    """The value of the case's "Chief Complaint" line: a clinician's first guess at the problem."""
    match = _CHIEF_COMPLAINT.search(case_summary)
    return match.group(1).strip() if match else None


def baseline_answer(context: dict) -> str:
    """The baseline's answer for one item, in the format the item asks for."""
    text = context.get("input", "")
    answer = None
    if context.get("category") == "mcqa":
        answer = best_fuzzy_option(text)
    elif context.get("benchmark") == "medr":
        answer = chief_complaint(text)
    if answer is None:
        answer = context.get("majority") or lead(text)
    answer_format = context.get("answer_format")
    return answer_format.format(answer=answer) if answer_format else answer
