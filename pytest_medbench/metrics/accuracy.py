"""Correct / incorrect rules of the MedS-Bench accuracy tasks.

Each task family has an ``official_*`` rule (the released evaluation code, quirks included, so
numbers compare with the published leaderboard) and a ``strict_*`` rule (the documented defects
fixed). All return a bool and never raise, whatever the text.
"""

from __future__ import annotations

import re

from ..parsing.mcqa import extract_letters, extract_yes_no_maybe, first_letter

NLI_LABELS = ("entailment", "contradiction", "neutral")


def official_mcqa(output: str, gold: str, *, pubmedqa: bool) -> bool:
    """First character after removing "the right answer is": in 'abcd' (PubMedQA: 'yn'), equal to gold's.

    So localised golds never score, option E and "maybe" are impossible: the official code's quirks.
    """
    p = output.lower().replace("the right answer is", "").strip()
    g = gold.lower().replace("the right answer is", "").strip()
    allowed = "yn" if pubmedqa else "abcd"
    return bool(p and g) and p[0] in allowed and g[0] in allowed and p[0] == g[0]


def official_mcqa_raises(output: str, gold: str, *, pubmedqa: bool) -> bool:
    """Whether the released ``MCQA.py`` raises IndexError on this pair: a blank output (once "the right
    answer is" is removed), or a blank gold behind an output whose first character is allowed."""
    p = output.lower().replace("the right answer is", "").strip()
    g = gold.lower().replace("the right answer is", "").strip()
    return not p or (p[0] in ("yn" if pubmedqa else "abcd") and not g)


def strict_mcqa(output: str, gold: str, *, pubmedqa: bool, several: bool = False) -> bool:
    """Localised prefixes removed, then the same first option letter (A-E); with ``several``
    (FrenchMedMCQA) the same set of letters; PubMedQA the same yes/no/maybe."""
    if pubmedqa:
        answer = extract_yes_no_maybe(output)
        return answer is not None and answer == extract_yes_no_maybe(gold)
    if several:
        letters = extract_letters(output)
        return bool(letters) and letters == extract_letters(gold)
    letter = first_letter(output)
    return letter is not None and letter == first_letter(gold)


def official_label_prefix(output: str, gold: str, prefix: str) -> bool:
    """Gold label (prefix and periods removed, lowercased) contained in the lowercased output."""
    label = gold.replace(".", "").replace(prefix, "").strip().lower()
    return label in output.lower()


def _after_prefix(text: str, prefix: str) -> str:
    """The first non-blank line's text after ``prefix`` (the whole line when the prefix is not in it),
    lowercased, with a leading colon and the final period stripped. The prefix matches in any case
    and with or without its trailing colon: "The treatment planning is surgery" and "The diagnosis
    result is: pneumonia." read "surgery" and "pneumonia" under the prefixes "The treatment planning
    is:" and "The diagnosis result is"."""
    line = text.strip().split("\n", 1)[0]
    stem = prefix.strip().rstrip(":：").rstrip()
    boundary = r"\b" if stem[-1:].isalnum() else ""  # "is" must not match the start of "isolated"
    found = re.search(re.escape(stem) + boundary + r"\s*[:：]?", line, re.IGNORECASE) if stem else None
    rest = line[found.end() :] if found else line
    return rest.strip().lstrip(":：").strip().rstrip(".").strip().lower()


def strict_label_prefix(output: str, gold: str, prefix: str) -> bool:
    """The text after the prefix equals the gold label exactly ("stable angina" is not "unstable angina")."""
    return _after_prefix(output, prefix) == _after_prefix(gold, prefix)


def _norm_extraction(text: str) -> str:
    return re.sub("[\"'\n]", "", str(text).lower().strip())


def official_extraction(output: str, gold: str) -> bool:
    return _norm_extraction(gold) in _norm_extraction(output)


def strict_extraction(output: str, gold: str) -> bool:
    """Exact match of the normalised text, comparing comma-separated spans as sets (PICO)."""

    def spans(text: str) -> set[str]:
        return {span.strip().rstrip(".") for span in _norm_extraction(text).split(",") if span.strip()}

    return bool(output.strip()) and spans(output) == spans(gold)


_GENDER = re.compile(r"gender\s*:\s*([a-z]+)", re.I)
_AGE = re.compile(r"\[\s*([\d.]+)\s*,\s*['\"]?([a-z]+)['\"]?\s*\]", re.I)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "." or "1.2.3": a malformed age
        return None


def patient_profile(text: str) -> tuple[str | None, tuple[tuple[float | None, str], ...]]:
    """(gender letter, ((age, unit), ...)) from PMC-Patient's ``Gender: F`` / ``Age: "[[18.0, 'year']]"``;
    an age that is no number ("[[., 'year']]") is None."""
    gender = _GENDER.search(text)
    ages = tuple((_number(number), unit.lower().rstrip("s")) for number, unit in _AGE.findall(text))
    return (gender.group(1)[0].upper() if gender else None), ages


def strict_patient_profile(output: str, gold: str) -> bool:
    """PMC-Patient strict: the same gender and the same age list, parsed on both sides; a malformed
    age is wrong."""
    predicted, expected = patient_profile(output), patient_profile(gold)
    well_formed = all(age is not None for age, _ in predicted[1])
    return predicted[0] is not None and bool(predicted[1]) and well_formed and predicted == expected


def official_outcome(output: str, gold: str) -> bool:
    out, gt = output.lower().strip(), gold.lower().strip()
    if gt == "true":
        return "true" in out and "false" not in out
    if gt == "false":
        return "false" in out and "true" not in out
    return False


def strict_outcome(output: str, gold: str) -> bool:
    out = output.lower().strip()
    return official_outcome(output, gold) and out.startswith(gold.lower().strip())


def official_first_line(output: str, gold: str) -> bool:
    """Gold (periods removed) contained in the first line of the output; an empty output is wrong."""
    lines = output.lower().split("\n")
    return gold.replace(".", "").strip().lower() in lines[0] if output else False


def strict_first_line(output: str, gold: str) -> bool:
    tokens = re.findall(r"\w+", output.lower())
    return bool(tokens) and tokens[0] == gold.replace(".", "").strip().lower()


def official_nli(output: str, gold: str) -> bool:
    return str(gold).replace(".", "").strip().lower() in str(output).lower().strip()


# a label named as a word, and whether "not" / "non" / "no" (an article between allowed) negates it
_NLI_LABEL = re.compile(
    r"(?:\b(not|non|no)[\s-]+(?:(?:a|an|the)\s+)?)?\b(entailment|contradiction|neutral)\b"
)
_SENTENCE_END = re.compile(r"[.!?\n]")


def _nli_answer(text: str) -> str | None:
    """The one label ``text`` names, when it names exactly one and never negates it; else None."""
    negated: dict[str, bool] = {}
    for negation, label in _NLI_LABEL.findall(text):
        negated[label] = negated.get(label, False) or bool(negation)
    if len(negated) != 1:
        return None
    ((label, is_negated),) = negated.items()
    return None if is_negated else label


def nli_answer(output: str) -> str | None:
    """Strict NLI's answer: the one label the first sentence (up to the first ``.``, ``!``, ``?`` or
    line break) names, not negated ("Not entailment", "non-entailment"); when the first sentence
    names none, the one label the whole output names, not negated; otherwise None (no answer)."""
    text = output.lower().strip()
    first = _SENTENCE_END.split(text, 1)[0]
    return _nli_answer(first if _NLI_LABEL.search(first) else text)


def strict_nli(output: str, gold: str) -> bool:
    """Correct when ``nli_answer`` is the gold label: "entailment or contradiction or neutral" (a
    hedge naming several), "Not entailment." (negated) are no answer."""
    answer = nli_answer(output)
    return answer is not None and answer == gold.replace(".", "").strip().lower()
