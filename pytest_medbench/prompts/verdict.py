"""The judge prompt for a user's own free-text items (declared ``judge`` tasks, ``medbench_judge``).

Our own wording: the judge gets the question (when given), the reference, an optional rubric, and
the answer fenced (``prompts.fence``), and must reply with exactly Correct or Wrong.
"""

from __future__ import annotations

from .fence import fence

VERDICT_LABELS = ("Correct", "Wrong")
_SYSTEM = (
    "You grade answers to clinical questions against a reference answer written by clinicians. "
    "Reply with exactly one word: Correct or Wrong."
)


def verdict_messages(answer: str, reference: str, question: str | None, rubric: str | None) -> list[dict]:
    """The chat messages that ask a judge whether ``answer`` agrees with ``reference``."""
    parts = []
    if question:
        parts.append(f"Question:\n{question}")
    parts.append(f"Reference answer:\n{reference}")
    if rubric:
        parts.append(f"Grading rubric:\n{rubric}")
    parts.append(f"Answer to grade:\n{fence(answer)}")
    parts.append(
        "Is the answer clinically equivalent to the reference (and does it meet the rubric, if one is "
        "given)? Reply Correct or Wrong."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]
